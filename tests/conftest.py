"""Shared fixtures: users, keys, credentials, the admin client, and live servers."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest
from asgiref.sync import SyncToAsync
from django.db import connections

from accounts.keycache import key_cache
from accounts.models import ClientKey
from accounts.services import limits_update
from catalog import snapshot
from catalog.models import ChangeVersion, Model, ModelAlias
from catalog.seed import seed
from ccsite import invalidation
from tests.factories import UserFactory, make_client_key, make_credential
from tests.live import RedisProcess, daphne_process, free_port, simulator_process


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    # The cache is per process; tests must not see each other's lookups.
    key_cache.clear()
    yield
    key_cache.clear()


@pytest.fixture(autouse=True)
def _catalog_snapshot(request):
    """Each test reads the catalog as its own database holds it; a flushed catalog is re-seeded.

    Transactional tests (the live ones) flush every table afterwards, the data migration's seed
    included; the seed is put back (and announced, so a live gateway reloads) before the next.
    """
    snapshot.forget()
    names = request.fixturenames
    if "transactional_db" in names or "live" in names:
        request.getfixturevalue("transactional_db")
        if _reseed_catalog() and "live" in names:
            _wait_until_serving_the_catalog(request.getfixturevalue("live_gateway").url)
    elif "db" in names:
        request.getfixturevalue("db")
        _reseed_catalog()
    yield
    snapshot.forget()


def _reseed_catalog() -> bool:
    """Seed the emptied catalog and announce it; whether it was empty."""
    if Model.objects.exists():
        return False
    seed(Model, ModelAlias)
    invalidation.bump(snapshot.CHANGE_NAME)
    return True


def _wait_until_serving_the_catalog(gateway_url: str, timeout: float = 10.0) -> None:
    """Until the live gateway has loaded the catalog at the version just bumped (it polls every
    half second): before that it may still serve the previous test's catalog."""
    version = ChangeVersion.objects.get(name=snapshot.CHANGE_NAME).version
    deadline = time.monotonic() + timeout
    while True:
        loaded = httpx.get(f"{gateway_url}/health", timeout=10).json()["snapshots"]
        if loaded.get(snapshot.CHANGE_NAME) == version:
            return
        assert time.monotonic() < deadline, f"the gateway never loaded catalog v{version}: {loaded}"
        time.sleep(0.05)


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def client_key(user):
    """(ClientKey row, secret) for `user`."""
    return make_client_key(user=user)


@pytest.fixture
def credential(db):
    return make_credential()


@pytest.fixture
def superuser(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden", action="store_true", default=False, help="rewrite golden files from the output"
    )


@pytest.fixture(scope="session")
def simulator():
    """One simulator process for the session; tests reset its records and keys."""
    with simulator_process(port=free_port()) as process:
        yield process


@pytest.fixture(scope="session")
def live_gateway(simulator, django_db_setup, django_db_blocker):
    """Daphne serving ccsite on the test database, pointed at the simulator."""
    env = {
        "CC_UPSTREAM_BASE_URL": simulator.url,
        # Tests change credentials between tests: never serve a stale one.
        "CCSITE_CREDENTIAL_CACHE_SECONDS": "0",
        "CCSITE_KEEPALIVE_SECONDS": "0.5",
        "CC_RETRY_BASE_DELAY": "0.01",
        "CC_RETRY_MAX_DELAY": "0.05",
        "CCSITE_REQUEST_LOG_BACKGROUND": "1",
        "CCSITE_REQUEST_LOG_FLUSH_SECONDS": "0.05",
    }
    with daphne_process(port=free_port(), env=env) as process:
        yield process


@dataclass
class Live:
    """A running gateway + simulator pair, a client key for it, and the upstream key behind it."""

    url: str
    key: str
    simulator_url: str
    upstream_key: str

    def sim_requests(self, path: str = "/alpha/generate") -> list[dict[str, Any]]:
        response = httpx.get(f"{self.simulator_url}/_sim/requests", params={"path": path}, timeout=10)
        return response.json()["requests"]

    def wait_for_outcome(self, outcome: str, timeout: float = 5.0) -> dict[str, Any]:
        """The latest upstream request once the simulator reports ``outcome`` for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            records = self.sim_requests()
            if records and records[-1]["outcome"] == outcome:
                return records[-1]
            time.sleep(0.05)
        raise AssertionError(f"the simulator never saw {outcome!r}: {self.sim_requests()[-1:]}")

    def openai_client(self) -> openai.OpenAI:
        """The real OpenAI SDK on this gateway, validating every response strictly."""
        return openai.OpenAI(
            base_url=f"{self.url}/v1", api_key=self.key, max_retries=0, _strict_response_validation=True
        )

    def anthropic_client(self) -> anthropic.Anthropic:
        """The real Anthropic SDK on this gateway, validating every response strictly."""
        return anthropic.Anthropic(
            base_url=self.url, api_key=self.key, max_retries=0, _strict_response_validation=True
        )

    def limit_key(self, **changes: object) -> ClientKey:
        """Set limit fields (``accounts.services.limits_update``) on this test's client key."""
        key = ClientKey.objects.get(prefix=self.key[:16])
        limits_update(target=key, changes=changes)
        return key

    def set_upstream_behaviour(self, **behaviour: Any) -> None:
        """Make the simulator treat this test's upstream key specially (e.g. scenario="http-401")."""
        response = httpx.post(
            f"{self.simulator_url}/_sim/keys", json={"key": self.upstream_key, **behaviour}, timeout=10
        )
        response.raise_for_status()


@pytest.fixture
def live(live_gateway, simulator, transactional_db) -> Live:
    """Per test: a fresh user, client key and upstream credential, and a clean simulator log."""
    upstream_key = f"user_live_{secrets.token_hex(8)}"
    make_credential(label=f"sim-{upstream_key[-6:]}", api_key=upstream_key)
    _, key = make_client_key()
    httpx.delete(f"{simulator.url}/_sim/requests", timeout=10).raise_for_status()
    return Live(url=live_gateway.url, key=key, simulator_url=simulator.url, upstream_key=upstream_key)


@pytest.fixture(scope="session")
def redis_server():
    """A private redis-server on a free loopback port for the session (skipped if not installed)."""
    try:
        server = RedisProcess(free_port()).start()
    except FileNotFoundError as exc:
        pytest.skip(f"Redis back end not tested: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """Before the test database is dropped, close the connection async tests opened in asgiref's
    thread for sync code: PostgreSQL refuses to drop a database another session still uses."""
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()
