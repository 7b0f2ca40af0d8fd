"""ccsite settings: read only from the environment (see .env.example for every variable)."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from ccsite.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
    load_env_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VERSION = "0.1.0"

# The git-ignored .env written by `make run`; an empty CCSITE_ENV_FILE disables it (tests do).
_env_file = env_str("CCSITE_ENV_FILE", str(BASE_DIR / ".env"))
if _env_file:
    load_env_file(Path(_env_file))

DEBUG = env_bool("DEBUG", False)

# Fail closed: without DEBUG every secret must be configured.
SECRET_KEY = env_secret("SECRET_KEY", required=not DEBUG) or "insecure-debug-only-secret-key"
CLIENT_KEY_PEPPER = env_secret("CLIENT_KEY_PEPPER", required=not DEBUG) or "debug-only-pepper"
CREDENTIAL_ENCRYPTION_KEY = env_secret("CREDENTIAL_ENCRYPTION_KEY", required=not DEBUG) or (
    # A fixed, valid Fernet key for DEBUG only; production must set its own.
    "ZGVidWctb25seS1rZXktZG8tbm90LXVzZS0xMjM0NTY="
)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ("127.0.0.1", "localhost", "[::1]"))
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
DATA_DIR = Path(env_str("CCSITE_DATA_DIR", str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "accounts",
    "proxy",
    "catalog",
    "usage",
    "portal",
]

# The self-service pages (portal/) sign team members in with Django's own auth.
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:home"

# Each entry skips its work on the /v1 API path (ccsite/middleware.py), so API requests never
# pay for sessions, CSRF or messages, nor for the thread hops MiddlewareMixin makes under ASGI.
MIDDLEWARE = [
    "ccsite.middleware.SecurityMiddleware",
    "ccsite.middleware.SessionMiddleware",
    "ccsite.middleware.CommonMiddleware",
    "ccsite.middleware.CsrfViewMiddleware",
    "ccsite.middleware.AuthenticationMiddleware",
    "ccsite.middleware.MessageMiddleware",
    "ccsite.middleware.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "ccsite.urls"
ASGI_APPLICATION = "ccsite.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database() -> dict[str, object]:
    url = env_str("DATABASE_URL")
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "ccsite.sqlite3",
            "OPTIONS": {
                # WAL lets readers run beside the writer; IMMEDIATE avoids lock upgrades failing.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    if not url.startswith(("postgres://", "postgresql://")):
        raise ImproperlyConfigured("DATABASE_URL must be a postgres:// or postgresql:// URL")
    # Django's psycopg 3 pool replaces persistent connections (CONN_MAX_AGE must stay 0).
    config = dict(dj_database_url.parse(url, conn_max_age=0))
    config["OPTIONS"] = {
        **config.get("OPTIONS", {}),
        "pool": {
            "min_size": env_int("CCSITE_DB_POOL_MIN_SIZE", 2, minimum=0),
            "max_size": env_int("CCSITE_DB_POOL_MAX_SIZE", 10, minimum=1),
            "timeout": env_float("CCSITE_DB_POOL_TIMEOUT", 10.0),
        },
    }
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "ccsite",
            # Fail fast when Redis is down instead of holding a request (and /health) open.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 5},
        }
    }
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Admin assets are served at the ASGI edge (ccsite/asgi.py), so no sync static middleware.

SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
if env_bool("CCSITE_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Request bodies: chat histories with images are large; Django's 2.5 MB default is far too small.
CCSITE_MAX_BODY_BYTES = env_int("CCSITE_MAX_BODY_BYTES", 64 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = CCSITE_MAX_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = CCSITE_MAX_BODY_BYTES

# The HTTP server (Daphne on Twisted; ccsite/twisted_tuning.py applies these to every way it
# is started). The listen backlog is capped by the kernel's net.core.somaxconn. A request must
# send its headers within CCSITE_HEADER_TIMEOUT seconds of its first byte and its body within
# CCSITE_BODY_TIMEOUT seconds after them (a 408 otherwise); an idle keep-alive connection
# closes after CCSITE_IDLE_CONNECTION_TIMEOUT seconds.
CCSITE_LISTEN_BACKLOG = env_int("CCSITE_LISTEN_BACKLOG", 2048, minimum=1)
CCSITE_HEADER_TIMEOUT = env_float("CCSITE_HEADER_TIMEOUT", 10.0, minimum=0.1)
CCSITE_BODY_TIMEOUT = env_float("CCSITE_BODY_TIMEOUT", 60.0, minimum=0.1)
CCSITE_IDLE_CONNECTION_TIMEOUT = env_float("CCSITE_IDLE_CONNECTION_TIMEOUT", 75.0, minimum=0.1)

# Client keys: how long a looked-up key is trusted before the database is asked again. Revocations
# and limit changes reach other processes sooner, through ccsite.invalidation (about 1 s).
CCSITE_KEY_CACHE_SECONDS = env_float("CCSITE_KEY_CACHE_SECONDS", 5.0)
# Per-user limits: a concurrency slot whose request never ended (its process died) is freed
# after this many seconds; keep it above the longest request you serve.
CCSITE_LIMIT_SLOT_SECONDS = env_float("CCSITE_LIMIT_SLOT_SECONDS", 900.0, minimum=1.0)
# For benchmarks only: serve /v1 without client keys, to measure what authentication costs.
# Refused unless the server answers only on loopback names, so it cannot be exposed by mistake.
CCSITE_AUTH_DISABLED = env_bool("CCSITE_AUTH_DISABLED", False)
if CCSITE_AUTH_DISABLED and not set(ALLOWED_HOSTS) <= {"127.0.0.1", "localhost", "[::1]"}:
    raise ImproperlyConfigured("CCSITE_AUTH_DISABLED is only allowed with loopback-only ALLOWED_HOSTS")
# Upstream credentials are re-read (and decrypted) at most this often per process.
CCSITE_CREDENTIAL_CACHE_SECONDS = env_float("CCSITE_CREDENTIAL_CACHE_SECONDS", 10.0)

# Credential routing (proxy/routing.py). auto = daily_burn once billing snapshots exist, else
# round_robin (weighted).
CCSITE_ROUTING_POLICY = env_choice(
    "CCSITE_ROUTING_POLICY",
    "auto",
    ("auto", "round_robin", "least_in_flight", "drain_first", "balance_priority", "daily_burn"),
)
# A failure before the first byte moves the request to another key at most this many times.
CCSITE_ROUTING_MAX_FAILOVERS = env_int("CCSITE_ROUTING_MAX_FAILOVERS", 3, minimum=0)
# Transient failures (plain 429, 5xx, network) cool a key for base * 2^(n-1) seconds, capped.
CCSITE_ROUTING_COOLDOWN_BASE = env_float("CCSITE_ROUTING_COOLDOWN_BASE", 5.0)
CCSITE_ROUTING_COOLDOWN_MAX = env_float("CCSITE_ROUTING_COOLDOWN_MAX", 300.0)
# A model refused by a key's plan (402/403) is not sent to that key again for this long.
CCSITE_ROUTING_MODEL_EXCLUSION_SECONDS = env_float("CCSITE_ROUTING_MODEL_EXCLUSION_SECONDS", 3600.0)
# A conversation stays on its key for this long after its last request (upstream prompt cache).
CCSITE_ROUTING_AFFINITY_SECONDS = env_float("CCSITE_ROUTING_AFFINITY_SECONDS", 1800.0)
# Concurrency slots expire this long after their last renewal (a crashed process frees its own).
CCSITE_ROUTING_SLOT_TTL = env_float("CCSITE_ROUTING_SLOT_TTL", 60.0, minimum=1.0)
# Requests whose client key is itself a Command Code key (user_...) go upstream with that key.
CCSITE_PASSTHROUGH_USER_KEYS = env_bool("CCSITE_PASSTHROUGH_USER_KEYS", False)

# Snapshots (catalog, ...) notice changes made by other processes within this many seconds.
CCSITE_INVALIDATION_POLL_SECONDS = env_float("CCSITE_INVALIDATION_POLL_SECONDS", 0.5, minimum=0.05)
# The model catalog's live refresh from GET /provider/v1/models, in the gateway process
# (0 disables the schedule; the admin action and `manage.py models refresh` still work).
CCSITE_MODELS_REFRESH_SECONDS = env_float("CCSITE_MODELS_REFRESH_SECONDS", 3600.0, minimum=0)
CCSITE_MODELS_NEW_ENABLED = env_bool("CCSITE_MODELS_NEW_ENABLED", True)
CCSITE_MODELS_REFRESH_TIMEOUT = env_float("CCSITE_MODELS_REFRESH_TIMEOUT", 10.0, minimum=0.1)

# On SIGTERM a gateway process stops accepting and lets open requests (streams) finish for up to
# this many seconds before it runs its shutdown hooks and exits (ccsite/shutdown.py).
CCSITE_SHUTDOWN_GRACE_SECONDS = env_float("CCSITE_SHUTDOWN_GRACE_SECONDS", 30.0)

# GET /metrics (Prometheus): with a token, callers send `Authorization: Bearer <token>`; without
# one, only loopback callers (no forwarded remote address) are answered. Multi-process mode is
# PROMETHEUS_MULTIPROC_DIR, read by prometheus_client itself (proxy/metrics.py).
CCSITE_METRICS_TOKEN = env_secret("CCSITE_METRICS_TOKEN", required=False)

# Command Code upstream (protocol §1, §3, §10).
CC_UPSTREAM_BASE_URL = env_str("CC_UPSTREAM_BASE_URL", "https://api.commandcode.ai").rstrip("/")
if not CC_UPSTREAM_BASE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured("CC_UPSTREAM_BASE_URL must start with http:// or https://")
CC_CLI_VERSION = env_str("CC_CLI_VERSION", "1.64.0")
CC_CLI_VERSION_AUTO = env_bool("CC_CLI_VERSION_AUTO", False)
CC_NPM_REGISTRY_URL = env_str("CC_NPM_REGISTRY_URL", "https://registry.npmjs.org").rstrip("/")
CC_PROJECT_SLUG = env_str("CC_PROJECT_SLUG", "ccsite")
CC_WORKING_DIR = env_str("CC_WORKING_DIR", "/workspace")
CC_PERMISSION_MODE = env_choice("CC_PERMISSION_MODE", "standard", ("standard", "auto-accept", "plan"))
CC_TASTE_LEARNING = env_bool("CC_TASTE_LEARNING", False)
CC_CONNECT_TIMEOUT = env_float("CC_CONNECT_TIMEOUT", 10.0)
CC_FIRST_EVENT_TIMEOUT = env_float("CC_FIRST_EVENT_TIMEOUT", 300.0)
CC_IDLE_TIMEOUT = env_float("CC_IDLE_TIMEOUT", 300.0)
CC_TOTAL_TIMEOUT = env_float("CC_TOTAL_TIMEOUT", 3600.0)
CC_MAX_RETRIES = env_int("CC_MAX_RETRIES", 2, minimum=0)
CC_RETRY_BASE_DELAY = env_float("CC_RETRY_BASE_DELAY", 0.5)
CC_RETRY_MAX_DELAY = env_float("CC_RETRY_MAX_DELAY", 8.0)
CC_MAX_LINE_BYTES = env_int("CC_MAX_LINE_BYTES", 64 * 1024 * 1024, minimum=1024)
CC_DEFAULT_MAX_TOKENS = env_int("CC_DEFAULT_MAX_TOKENS", 64000, minimum=1)
# How long a response waits after the upstream's 200 for its first visible event, so that an
# in-band error right at the start still becomes a real HTTP status (0 disables the wait).
CC_STATUS_PEEK_SECONDS = env_float("CC_STATUS_PEEK_SECONDS", 1.0)
CC_MAX_CONNECTIONS = env_int("CC_MAX_CONNECTIONS", 4096, minimum=1)
CC_MAX_KEEPALIVE_CONNECTIONS = env_int("CC_MAX_KEEPALIVE_CONNECTIONS", 256, minimum=0)
# Outbound HTTP(S) proxy for every call out (upstream, billing, catalog, images); empty: the
# environment's HTTPS_PROXY/HTTP_PROXY. NO_PROXY hosts always go direct.
CC_UPSTREAM_PROXY = env_str("CC_UPSTREAM_PROXY", "")
# The upstream HTTP client: ours (http1) or aiohttp's, for the benchmark's comparison only.
CC_UPSTREAM_CLIENT = env_choice("CC_UPSTREAM_CLIENT", "http1", ("http1", "aiohttp"))

# Billing snapshots of upstream credentials (proxy/billing.py); 0 = only on demand.
CCSITE_BILLING_REFRESH_SECONDS = env_float("CCSITE_BILLING_REFRESH_SECONDS", 0.0)
CCSITE_LOW_BALANCE_WEBHOOK_URL = env_str("CCSITE_LOW_BALANCE_WEBHOOK_URL", "")
CCSITE_LOW_BALANCE_THRESHOLD = (
    env_float("CCSITE_LOW_BALANCE_THRESHOLD", 0.0) if env_str("CCSITE_LOW_BALANCE_THRESHOLD", "") else None
)

# Client-facing behaviour of the /v1 surfaces.
CCSITE_KEEPALIVE_SECONDS = env_float("CCSITE_KEEPALIVE_SECONDS", 5.0, minimum=0.05)
CCSITE_REASONING_CONTENT = env_bool("CCSITE_REASONING_CONTENT", True)
# A `length` finish before any visible output: OpenAI answers 200 with empty content, and so
# does the gateway by default; 0 makes it an error (with x-should-retry: false).
CCSITE_ALLOW_EMPTY_LENGTH = env_bool("CCSITE_ALLOW_EMPTY_LENGTH", True)
# Bodies larger than this are parsed and translated in a worker thread, so one huge request
# cannot hold the event loop that every other client's stream runs on.
CCSITE_OFFLOAD_BODY_BYTES = env_int("CCSITE_OFFLOAD_BODY_BYTES", 256 * 1024, minimum=0)
CCSITE_IMAGE_FETCH = env_bool("CCSITE_IMAGE_FETCH", False)
CCSITE_IMAGE_FETCH_MAX_BYTES = env_int("CCSITE_IMAGE_FETCH_MAX_BYTES", 10 * 1024 * 1024, minimum=1)
CCSITE_IMAGE_FETCH_TIMEOUT = env_float("CCSITE_IMAGE_FETCH_TIMEOUT", 10.0)
# POST /v1/responses: how long this process keeps its own responses for previous_response_id
# (per client key, in memory), and how many and how many bytes it keeps at most (the least
# recently used go first).
CCSITE_RESPONSES_STORE_SECONDS = env_float("CCSITE_RESPONSES_STORE_SECONDS", 3600.0, minimum=0)
CCSITE_RESPONSES_STORE_MAX = env_int("CCSITE_RESPONSES_STORE_MAX", 5000, minimum=0)
CCSITE_RESPONSES_STORE_MAX_BYTES = env_int("CCSITE_RESPONSES_STORE_MAX_BYTES", 256 * 1024 * 1024, minimum=0)

# Request logs (usage/recorder.py): rows are queued in memory and written in batches off the
# request path. CCSITE_REQUEST_LOG=0 turns recording off (benchmarks compare both).
CCSITE_REQUEST_LOG = env_bool("CCSITE_REQUEST_LOG", True)
CCSITE_REQUEST_LOG_BACKGROUND = env_bool("CCSITE_REQUEST_LOG_BACKGROUND", True)
CCSITE_REQUEST_LOG_FLUSH_SECONDS = env_float("CCSITE_REQUEST_LOG_FLUSH_SECONDS", 1.0, minimum=0.01)
CCSITE_REQUEST_LOG_BATCH = env_int("CCSITE_REQUEST_LOG_BATCH", 500, minimum=1)
CCSITE_REQUEST_LOG_QUEUE_MAX = env_int("CCSITE_REQUEST_LOG_QUEUE_MAX", 100_000, minimum=1)
# Opt-in, for debugging: keep request and response bodies, redacted, each cut at this many bytes.
CCSITE_REQUEST_LOG_BODIES = env_bool("CCSITE_REQUEST_LOG_BODIES", False)
CCSITE_REQUEST_LOG_BODY_MAX_BYTES = env_int("CCSITE_REQUEST_LOG_BODY_MAX_BYTES", 64 * 1024, minimum=256)
# Days of request logs `prune_request_logs` keeps when run without --older-than (0 = keep all).
CCSITE_REQUEST_LOG_RETENTION_DAYS = env_int("CCSITE_REQUEST_LOG_RETENTION_DAYS", 90, minimum=0)
# last_used_at of client keys and credentials is written at most once per key per this period.
CCSITE_LAST_USED_SECONDS = env_float("CCSITE_LAST_USED_SECONDS", 60.0, minimum=0)

LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": LOG_LEVEL},
        # httpx logs every upstream request at INFO: noise, and a cost on the hot path.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
