"""The routing policy is a setting the admin overrides: at once in the process that saved it,
within a second in another gateway process, and never a query on the request path."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from ccsite.sharedstate import MemoryState, reset_shared_state
from proxy import routing, routing_settings
from proxy.models import RoutingSettings
from proxy.upstream.simulator.recorder import key_fingerprint
from tests.factories import make_client_key, make_credential
from tests.live import daphne_process, free_port
from tests.queries import count_queries

pytestmark = pytest.mark.django_db(transaction=True)
MODEL = "deepseek/deepseek-v4-flash"
DAY = 86400.0


def add_keys() -> dict[str, str]:
    """Two keys: drain_first picks ``a-poor`` (first label), balance_priority ``b-rich``."""
    secrets = {}
    for label, credits in (("a-poor", 5.0), ("b-rich", 50.0)):
        secret = f"user_policy_{uuid.uuid4().hex[:16]}"
        row = make_credential(label=label, api_key=secret)
        row.billing = {"credits_remaining": credits, "period_end": time.time() + 10 * DAY}
        row.save()
        secrets[label] = secret
    return secrets


@pytest.fixture
async def state(settings):
    settings.CCSITE_ROUTING_POLICY = "drain_first"
    settings.CCSITE_CREDENTIAL_CACHE_SECONDS = 60  # only a change may reload the pool
    backend = MemoryState()
    reset_shared_state(backend)
    routing.pool.invalidate()
    routing_settings.forget()
    yield backend
    await routing.settle()
    reset_shared_state(None)
    routing_settings.forget()


async def first_choice(state: MemoryState) -> str:
    chooser = routing.RoutingChooser(MODEL, "", None, state)
    entry = await chooser.pick(exclude=set())
    assert entry is not None, chooser.last_error
    chooser.finish()
    return entry.credential.label


async def test_the_admin_override_applies_at_once_and_costs_no_query(admin_client, state):
    await sync_to_async(add_keys)()
    assert await first_choice(state) == "a-poor"  # the server setting: drain_first
    listing = await sync_to_async(admin_client.get)("/admin/proxy/routingsettings/")
    assert listing.status_code == 302 and listing["Location"].endswith("/routingsettings/1/change/")
    page = (await sync_to_async(admin_client.get)(listing["Location"])).content.decode()
    assert "drain_first (server setting; CCSITE_ROUTING_POLICY=drain_first)" in page
    saved = await sync_to_async(admin_client.post)(listing["Location"], {"policy": "balance_priority"})
    assert saved.status_code == 302
    assert routing_settings.policy() == "balance_priority"
    with count_queries() as queries:  # the pool is warm: the policy comes from the snapshot
        assert await first_choice(state) == "b-rich"
    assert len(queries) == 0, queries.sql
    page = (await sync_to_async(admin_client.get)(listing["Location"])).content.decode()
    assert "balance_priority (set here; CCSITE_ROUTING_POLICY=drain_first)" in page
    # Back to the server setting.
    await sync_to_async(admin_client.post)(listing["Location"], {"policy": ""})
    assert await first_choice(state) == "a-poor"
    assert await RoutingSettings.objects.acount() == 1


def test_the_settings_row_is_a_singleton_without_add_or_delete(admin_client):
    assert admin_client.get("/admin/proxy/routingsettings/add/").status_code == 403
    row = RoutingSettings.load()
    RoutingSettings(policy="daily_burn").save()  # a second save is the same row
    assert RoutingSettings.objects.count() == 1 and RoutingSettings.objects.get().policy == "daily_burn"
    assert admin_client.get(f"/admin/proxy/routingsettings/{row.pk}/delete/").status_code == 403
    index = admin_client.get("/admin/").content.decode()
    assert "Routing settings" in index


def _used_key(gateway_url: str, simulator_url: str, client_key: str, secrets: dict[str, str]) -> str:
    return _routed(gateway_url, simulator_url, client_key, secrets)[0]


def _routed(
    gateway_url: str, simulator_url: str, client_key: str, secrets: dict[str, str]
) -> tuple[str, float]:
    """The key one request was sent upstream with, and when the upstream received it (epoch
    seconds: an upper bound of when the gateway chose the key)."""
    before = len(httpx.get(f"{simulator_url}/_sim/requests", timeout=10).json()["requests"])
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {client_key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    records = httpx.get(f"{simulator_url}/_sim/requests", timeout=10).json()["requests"][before:]
    by_print = {key_fingerprint(secret): label for label, secret in secrets.items()}
    generated = [r for r in records if r["path"] == "/alpha/generate"]
    assert len(generated) == 1, records
    return by_print[generated[0]["key_fingerprint"]], generated[0]["received_at"]


def _set_policy_through_admin_of(url: str, policy: str) -> None:
    with httpx.Client(base_url=url, timeout=10, follow_redirects=False) as browser:
        browser.get("/admin/login/")
        response = browser.post(
            "/admin/login/?next=/admin/",
            data={
                "username": "policy-admin",
                "password": "pw-policy",
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            },
            headers={"Referer": f"{url}/admin/login/"},
        )
        assert response.status_code == 302
        change = browser.get("/admin/proxy/routingsettings/", follow_redirects=True)
        assert change.status_code == 200
        response = browser.post(
            str(change.url.path),
            data={"policy": policy, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            headers={"Referer": str(change.url)},
        )
        assert response.status_code == 302, response.text[:500]


@pytest.mark.live
@pytest.mark.parametrize("signal", ["database", "redis"])
def test_a_policy_set_in_one_process_is_obeyed_by_another_within_a_second(request, simulator, signal):
    User.objects.create_superuser("policy-admin", password="pw-policy")
    secrets = add_keys()
    _, client_key = make_client_key()
    env = {
        "CC_UPSTREAM_BASE_URL": simulator.url,
        "CCSITE_ROUTING_POLICY": "drain_first",
        "CCSITE_CREDENTIAL_CACHE_SECONDS": "60",
    }
    if signal == "redis":
        redis_url = request.getfixturevalue("redis_server").url
        env["REDIS_URL"] = redis_url
    with (
        daphne_process(port=free_port(), env=env) as first,
        daphne_process(port=free_port(), env=env) as second,
    ):
        for gateway in (first, second):
            assert _used_key(gateway.url, simulator.url, client_key, secrets) == "a-poor"
        _set_policy_through_admin_of(first.url, "balance_priority")
        changed_at = time.time()  # the admin's save has returned
        while True:
            used, routed_by = _routed(second.url, simulator.url, client_key, secrets)
            if used == "b-rich":
                break
            assert routed_by - changed_at < 1.0, "the other process still routes by the old policy"
            time.sleep(0.02)
        elapsed = routed_by - changed_at
        assert _used_key(first.url, simulator.url, client_key, secrets) == "b-rich"
        _set_policy_through_admin_of(first.url, "")  # back to the server setting
        reset_at = time.time()
        while True:
            used, routed_by = _routed(second.url, simulator.url, client_key, secrets)
            if used == "a-poor":
                break
            assert routed_by - reset_at < 1.0
            time.sleep(0.02)
    assert elapsed < 1.0


async def test_an_old_credential_snapshot_is_re_read_in_the_background(state, settings):
    settings.CCSITE_CREDENTIAL_CACHE_SECONDS = 0.2
    from accounts.models import UpstreamCredential

    await sync_to_async(add_keys)()
    assert {entry.weight for entry in await routing.pool.all()} == {1}
    # A change nobody signalled (like a billing snapshot): picked up after the cache time,
    # without the request that notices the age waiting for the database.
    await UpstreamCredential.objects.all().aupdate(weight=3)
    await asyncio.sleep(0.25)
    with count_queries() as queries:
        served = await routing.pool.all()
    assert {entry.weight for entry in served} == {1} and len(queries) == 0
    await routing.settle()  # the background re-read
    assert {entry.weight for entry in await routing.pool.all()} == {3}
