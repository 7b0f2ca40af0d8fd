"""Shared fixtures: users, keys, credentials and the admin client."""

from __future__ import annotations

import pytest

from accounts.keycache import key_cache
from tests.factories import UserFactory, make_client_key, make_credential


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    # The cache is per process; tests must not see each other's lookups.
    key_cache.clear()
    yield
    key_cache.clear()


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
