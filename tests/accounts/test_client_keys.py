from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts import keys
from accounts.models import ClientKey
from accounts.selectors import client_key_get_by_secret
from accounts.services import client_key_revoke
from tests.factories import UserFactory, make_client_key
from tests.queries import count_queries

pytestmark = pytest.mark.django_db(transaction=True)


async def test_key_lifecycle_create_authenticate_revoke_refuse():
    key, secret = await sync_to_async(make_client_key)(name="laptop")
    principal = await client_key_get_by_secret(secret)
    assert principal is not None
    assert (principal.key_id, principal.key_name) == (key.pk, "laptop")

    await sync_to_async(client_key_revoke)(key=key)

    assert await client_key_get_by_secret(secret) is None
    row = await ClientKey.objects.aget(pk=key.pk)
    assert row.revoked and row.revoked_at is not None


async def test_expired_key_is_refused():
    past = timezone.now() - timedelta(seconds=1)
    _, secret = await sync_to_async(make_client_key)(expires_at=past)
    assert await client_key_get_by_secret(secret) is None


async def test_key_of_inactive_user_is_refused():
    user = await sync_to_async(UserFactory)(is_active=False)
    _, secret = await sync_to_async(make_client_key)(user=user)
    assert await client_key_get_by_secret(secret) is None


async def test_wrong_secret_with_a_real_prefix_is_refused():
    _, secret = await sync_to_async(make_client_key)()
    forged = secret[: keys.PREFIX_LENGTH] + "x" * (keys.KEY_LENGTH - keys.PREFIX_LENGTH)
    assert await client_key_get_by_secret(forged) is None


def test_only_prefix_and_digest_are_stored(settings):
    key, secret = make_client_key()
    row = ClientKey.objects.get(pk=key.pk)
    expected = hmac.new(settings.CLIENT_KEY_PEPPER.encode(), secret.encode(), hashlib.sha256).hexdigest()
    assert secret.startswith("ccs_") and len(secret) == keys.KEY_LENGTH
    assert row.digest == expected
    assert row.prefix == secret[: keys.PREFIX_LENGTH]
    stored = " ".join(str(value) for value in ClientKey.objects.filter(pk=key.pk).values().get().values())
    assert secret not in stored
    assert secret[keys.PREFIX_LENGTH :] not in stored


async def test_verification_uses_constant_time_compare(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys.hmac, "compare_digest", spy)
    _, secret = await sync_to_async(make_client_key)()
    assert await client_key_get_by_secret(secret) is not None
    assert len(calls) == 1


async def test_cached_lookup_costs_no_query():
    _, secret = await sync_to_async(make_client_key)()
    with count_queries() as first:
        assert await client_key_get_by_secret(secret) is not None
    with count_queries() as second:
        assert await client_key_get_by_secret(secret) is not None
    assert len(first) == 1  # the counter sees async ORM queries
    assert len(second) == 0


async def test_revocation_reaches_this_process_at_once_despite_the_cache():
    key, secret = await sync_to_async(make_client_key)()
    assert await client_key_get_by_secret(secret) is not None  # now cached
    await sync_to_async(client_key_revoke)(key=key)
    assert await client_key_get_by_secret(secret) is None


async def test_revocation_by_another_process_lands_within_the_cache_ttl(settings):
    settings.CCSITE_KEY_CACHE_SECONDS = 0.05
    key, secret = await sync_to_async(make_client_key)()
    assert await client_key_get_by_secret(secret) is not None
    # Another process revokes: the row changes, this process's cache is not told.
    await ClientKey.objects.filter(pk=key.pk).aupdate(revoked=True, revoked_at=timezone.now())
    assert await client_key_get_by_secret(secret) is not None  # still cached
    await asyncio.sleep(0.06)
    assert await client_key_get_by_secret(secret) is None


@pytest.mark.parametrize("garbage", ["", "sk-test", "ccs_short", "ccs_" + "!" * 44, "x" * 48])
async def test_malformed_keys_are_refused_without_a_query(garbage):
    with count_queries() as queries:
        assert await client_key_get_by_secret(garbage) is None
    assert len(queries) == 0
