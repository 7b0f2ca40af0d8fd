"""What a Command Code request looks like on the wire: headers (protocol §3) and envelope (§5).

Everything here mirrors CLI 1.64.0 so the service cannot tell the gateway from its own CLI.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from ccsite.settings_cache import cached_settings
from proxy.ids import random_hex, random_uuid4
from proxy.translate.wire import UpstreamRequest
from proxy.upstream.version import cli_version

GENERATE_PATH = "/alpha/generate"
# A fixed namespace so the same client conversation id always maps to the same threadId.
SESSION_NAMESPACE = uuid.UUID("6f1c9a52-3d4e-5b8a-9c0d-7e2f4a6b8c10")


def thread_id(session_hint: str | None, scope: str = "") -> str:
    """§5: threadId must be a real UUID (the service rejects other shapes with a 400).

    A client conversation id maps to a stable UUIDv5, so the upstream sees one thread per
    conversation (and can reuse its prompt cache); without one, each request is its own thread.
    ``scope`` (the gateway user) is part of the name: two users who send the same id (say
    ``user: "shared-session"``) get different threads, never each other's.
    """
    if session_hint:
        return str(uuid.uuid5(SESSION_NAMESPACE, f"{scope}\x00{session_hint}" if scope else session_hint))
    return random_uuid4()


def traceparent() -> str:
    """§3: W3C trace context, as the CLI sends with telemetry on: a 16-byte trace id and an
    8-byte parent id in hex."""
    digits = random_hex(24)
    return f"00-{digits[:32]}-{digits[32:]}-01"


def generate_headers(api_key: str, session_id: str) -> dict[str, str]:
    """§3 headers in the CLI's order."""
    return {
        "content-type": "application/json",
        "User-Agent": "cli",
        "x-command-code-version": cli_version(),
        "x-cli-environment": "production",
        "x-project-slug": cached_settings.CC_PROJECT_SLUG,
        "x-taste-learning": "true" if cached_settings.CC_TASTE_LEARNING else "false",
        "x-session-id": session_id,
        "Authorization": f"Bearer {api_key}",
        "traceparent": traceparent(),
        # What the CLI's fetch (undici) adds on its own.
        "accept": "*/*",
        "accept-language": "*",
        "sec-fetch-mode": "cors",
        "accept-encoding": "gzip, deflate",
        "connection": "keep-alive",
    }


_day: list[Any] = [0.0, ""]  # (monotonic time of the last check, the UTC date then)


def _today() -> str:
    """The UTC date, formatted at most once a second (it is on every request)."""
    now = time.monotonic()
    if now - _day[0] >= 1.0:
        _day[0], _day[1] = now, datetime.now(UTC).strftime("%Y-%m-%d")
    return str(_day[1])


def _config() -> dict[str, Any]:
    """§5 config: the gateway has no working tree, so it describes an empty, non-git one."""
    return {
        "workingDir": cached_settings.CC_WORKING_DIR,
        "date": _today(),
        "environment": "linux",
        "structure": [],
        "isGitRepo": False,
        "currentBranch": "",
        "mainBranch": "",
        "gitStatus": "",
        "recentCommits": [],
    }


def envelope(request: UpstreamRequest, session_id: str) -> bytes:
    """§5 body, keys in the CLI's order; ``mode``/``promptCache`` omitted as the main loop does."""
    return orjson.dumps(
        {
            "config": _config(),
            "memory": None,
            "taste": None,
            "skills": None,
            "permissionMode": cached_settings.CC_PERMISSION_MODE,
            "threadId": session_id,
            "params": request.params(cached_settings.CC_DEFAULT_MAX_TOKENS),
        }
    )
