"""Routing against the simulator over real sockets, on both shared-state back ends: failover
before the first byte, key state afterwards, max_concurrent, session affinity, admin disable."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from asgiref.sync import sync_to_async

from accounts.models import UpstreamCredential
from ccsite.sharedstate import MemoryState, RedisState, reset_shared_state
from proxy import credential_writer, routing
from proxy.outcomes import RequestOutcome
from proxy.translate.errors import FailedResponse
from proxy.translate.wire import UpstreamRequest
from proxy.upstream.client import close_upstream_client
from proxy.upstream.errors import UpstreamError
from proxy.upstream.simulator.recorder import key_fingerprint
from proxy.upstream.simulator.scenarios import expected_text
from tests.factories import make_credential
from tests.upstream.test_client import streamed_text

MODEL = "deepseek/deepseek-v4-flash"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["memory", "redis"])
async def state(request, simulator, settings):
    settings.CC_UPSTREAM_BASE_URL = simulator.url
    settings.CC_RETRY_BASE_DELAY = 0.01
    settings.CC_RETRY_MAX_DELAY = 0.05
    settings.CC_MAX_RETRIES = 2
    settings.CCSITE_CREDENTIAL_CACHE_SECONDS = 0
    settings.CCSITE_ROUTING_POLICY = "drain_first"
    if request.param == "memory":
        backend = MemoryState()
    else:
        backend = RedisState(request.getfixturevalue("redis_server").url)
    reset_shared_state(backend)
    routing.pool.invalidate()
    await close_upstream_client()
    yield backend
    await routing.settle()
    await credential_writer.flush()
    await close_upstream_client()
    await backend.close()
    reset_shared_state(None)


class Keys:
    """Two (or more) upstream keys in the database and in the simulator."""

    def __init__(self, simulator_url: str) -> None:
        self.simulator_url = simulator_url
        self.secrets: dict[str, str] = {}
        self.rows: dict[str, UpstreamCredential] = {}

    async def add(self, label: str, **options: object) -> UpstreamCredential:
        secret = f"user_route_{uuid.uuid4().hex[:16]}"
        self.secrets[label] = secret
        # Labels sort in creation order, so drain_first tries them in that order.
        label_text = f"{label}-{uuid.uuid4().hex[:6]}"
        self.rows[label] = await sync_to_async(make_credential)(label=label_text, api_key=secret, **options)
        return self.rows[label]

    def behave(self, label: str, **behaviour: object) -> None:
        body = {"key": self.secrets[label], **behaviour}
        httpx.post(f"{self.simulator_url}/_sim/keys", json=body, timeout=10).raise_for_status()

    def calls(self, label: str) -> list[dict]:
        response = httpx.get(
            f"{self.simulator_url}/_sim/requests", params={"path": "/alpha/generate"}, timeout=10
        )
        fingerprint = key_fingerprint(self.secrets[label])
        return [r for r in response.json()["requests"] if r["key_fingerprint"] == fingerprint]

    def id(self, label: str) -> int:
        return self.rows[label].pk


@pytest.fixture
def keys(simulator, state):
    return Keys(simulator.url)


def request_for(text: str = "hi", *, session: str | None = None) -> UpstreamRequest:
    return UpstreamRequest(
        model=MODEL,
        messages=[{"role": "user", "content": [{"type": "text", "text": text}]}],
        system="Be brief.",
        session_hint=session,
    )


def outcome() -> RequestOutcome:
    return RequestOutcome("openai", None, MODEL, MODEL, True)


async def row(pk: int) -> UpstreamCredential:
    await credential_writer.flush()
    return await UpstreamCredential.objects.aget(pk=pk)


@pytest.mark.parametrize("scenario", ["http-429", "http-500", "http-401", "http-402", "http-403"])
async def test_a_failing_key_is_skipped_and_the_client_never_sees_its_error(keys, state, scenario):
    await keys.add("a")
    await keys.add("b")
    keys.behave("a", scenario=scenario)
    result = outcome()
    stream = await routing.open_upstream(None, request_for(), result)
    assert await streamed_text(stream) == expected_text()
    assert len(keys.calls("a")) == 1 and len(keys.calls("b")) == 1
    assert (result.credential_id, result.failovers) == (keys.id("b"), 1)
    a = keys.id("a")
    cool = await state.get_until(f"route:cool:{a}")
    saved = await row(a)
    assert saved.last_error and saved.last_error_at is not None
    if scenario == "http-429":  # usage window: cooled until the reset the upstream gave
        assert cool is not None and cool.reason == "usage window exhausted"
        assert saved.cooldown_until is not None and saved.cooldown_reason == cool.reason
    elif scenario == "http-500":  # transient: a short cooldown, then a half-open trial
        assert cool is not None and "failure 1 in a row" in cool.reason
        assert await state.get_until(f"route:probe:{a}") is not None
    elif scenario == "http-401":  # refused: disabled, with the reason recorded
        assert not saved.enabled and "refused by Command Code (401)" in saved.disabled_reason
    else:  # plan gating: only this model is excluded on this key
        assert await state.get_until(f"route:model:{a}:{MODEL}") is not None or cool is not None
    # The next request goes straight to b.
    again = outcome()
    assert await streamed_text(await routing.open_upstream(None, request_for(), again)) == expected_text()
    assert (again.credential_id, again.failovers) == (keys.id("b"), 0)
    assert len(keys.calls("a")) == 1


async def test_after_the_first_byte_an_error_is_not_retried(keys):
    await keys.add("a")
    await keys.add("b")
    keys.behave("a", scenario="error-retryable after=2")
    stream = await routing.open_upstream(None, request_for(), outcome())
    with pytest.raises(UpstreamError):
        await streamed_text(stream)
    assert len(keys.calls("a")) == 1 and keys.calls("b") == []


async def test_half_open_trial_decides_after_the_cooldown(keys, state, settings):
    settings.CCSITE_ROUTING_COOLDOWN_BASE = 0.3
    await keys.add("a")
    await keys.add("b")
    keys.behave("a", fail_first=1, fail_with="http-500")
    await streamed_text(await routing.open_upstream(None, request_for(), outcome()))  # a fails -> b
    first = outcome()
    await streamed_text(await routing.open_upstream(None, request_for(), first))
    assert first.credential_id == keys.id("b")  # a is cooling
    await asyncio.sleep(0.35)
    trial = outcome()
    await streamed_text(await routing.open_upstream(None, request_for(), trial))
    assert trial.credential_id == keys.id("a")  # the trial succeeded
    assert await state.get_until(f"route:probe:{keys.id('a')}") is None


async def test_every_key_failing_gives_the_last_failure(keys):
    await keys.add("a")
    keys.behave("a", scenario="http-401")
    with pytest.raises(UpstreamError):
        await routing.open_upstream(None, request_for(), outcome())
    # Now disabled: the next request is told so, without another upstream call.
    with pytest.raises(FailedResponse) as raised:
        await routing.open_upstream(None, request_for(), outcome())
    assert raised.value.error.code == "upstream_credentials_disabled"
    assert raised.value.error.error_class.openai_status == 503
    assert len(keys.calls("a")) == 1


async def test_max_concurrent_holds_under_50_streams_and_slots_come_back(keys, state, settings):
    a = await keys.add("a", max_concurrent=4)
    settings.CCSITE_CREDENTIAL_CACHE_SECONDS = 60  # one load for the 50 requests
    # Each stream outlasts the arrival of all 50, so exactly 4 hold slots; the rest are refused.
    keys.behave("a", scenario="paced deltas=20 delay_ms=50")

    async def one() -> str:
        try:
            stream = await routing.open_upstream(None, request_for(), outcome())
        except FailedResponse as exc:
            return exc.error.code or ""
        await streamed_text(stream)
        return "ok"

    results = await asyncio.gather(*(one() for _ in range(50)))
    assert results.count("ok") == 4
    assert set(results) == {"ok", "upstream_credentials_busy"}
    await asyncio.sleep(0.05)
    assert await state.slots_in_use(f"route:slots:{a.pk}") == 0  # released on success
    # Released on error (after visible output) and on a client that goes away.
    keys.behave("a", scenario="error-retryable after=2")
    with pytest.raises(UpstreamError):
        await streamed_text(await routing.open_upstream(None, request_for(), outcome()))
    await asyncio.sleep(0.05)
    assert await state.slots_in_use(f"route:slots:{a.pk}") == 0
    await routing.clear_credential_state(a.pk)  # that error cooled the key; start afresh
    keys.behave("a", scenario="paced deltas=100 delay_ms=50")
    stream = await routing.open_upstream(None, request_for(), outcome())
    assert await state.slots_in_use(f"route:slots:{a.pk}") == 1
    await stream.aclose()  # what the relay does when the client disconnects
    await asyncio.sleep(0.05)
    assert await state.slots_in_use(f"route:slots:{a.pk}") == 0


async def test_session_affinity_keeps_a_conversation_on_its_key_and_moves_it_on_failure(keys, settings):
    settings.CCSITE_ROUTING_POLICY = "round_robin"
    await keys.add("a")
    await keys.add("b")
    used = []
    for _ in range(4):
        result = outcome()
        await streamed_text(await routing.open_upstream(None, request_for(session="conv-1"), result))
        used.append(result.credential_id)
    assert len(set(used)) == 1
    pinned = "a" if used[0] == keys.id("a") else "b"
    other = "b" if pinned == "a" else "a"
    keys.behave(pinned, scenario="http-500")
    moved = []
    for _ in range(3):
        result = outcome()
        await streamed_text(await routing.open_upstream(None, request_for(session="conv-1"), result))
        moved.append(result.credential_id)
    assert moved == [keys.id(other)] * 3
    # Without a session, round robin spreads requests over both keys.
    keys.behave(pinned, scenario="text")
    await state_clear(keys.id(pinned))
    spread = set()
    for _ in range(4):
        result = outcome()
        await streamed_text(await routing.open_upstream(None, request_for(), result))
        spread.add(result.credential_id)
    assert spread == {keys.id("a"), keys.id("b")}


async def state_clear(credential_id: int) -> None:
    await routing.clear_credential_state(credential_id)


async def test_disabling_in_the_admin_takes_effect_on_the_next_request(keys, settings, admin_client):
    settings.CCSITE_CREDENTIAL_CACHE_SECONDS = 60  # only the change itself may refresh the pool
    a = await keys.add("a")
    await keys.add("b")
    first = outcome()
    await streamed_text(await routing.open_upstream(None, request_for(), first))
    assert first.credential_id == a.pk
    response = await sync_to_async(admin_client.post)(
        "/admin/accounts/upstreamcredential/",
        {"action": "disable_credentials", "_selected_action": [a.pk]},
    )
    assert response.status_code == 302
    second = outcome()
    await streamed_text(await routing.open_upstream(None, request_for(), second))
    assert second.credential_id == keys.id("b")


# A transient cooldown lowers a key's priority; it never refuses the only key that could serve.


async def test_a_single_key_is_still_tried_after_a_transient_failure(keys, state, settings):
    settings.CC_MAX_RETRIES = 0  # the client itself gives up at once: only routing decides
    a = await keys.add("a")
    keys.behave("a", fail_first=1, fail_with="http-500")
    with pytest.raises(UpstreamError) as failed:
        await streamed_text(await routing.open_upstream(None, request_for(), outcome()))
    assert failed.value.failure.status == 500  # the upstream's own failure, not a gateway 429
    cool = await state.get_until(f"route:cool:{a.pk}")
    assert cool is not None and "failure 1 in a row" in cool.reason
    # Cooling, but the only key: tried at once, and its success ends the cooldown.
    result = outcome()
    assert await streamed_text(await routing.open_upstream(None, request_for(), result)) == expected_text()
    assert result.credential_id == a.pk
    assert len(keys.calls("a")) == 2
    assert await state.get_until(f"route:cool:{a.pk}") is None
    assert await state.get_until(f"route:probe:{a.pk}") is None
    saved = await row(a.pk)
    assert saved.cooldown_until is None and saved.cooldown_reason == ""


async def test_a_single_key_retried_by_the_client_is_healthy_afterwards(keys, state):
    a = await keys.add("a")  # CC_MAX_RETRIES = 2: the same key is retried after a 5xx
    keys.behave("a", fail_first=1, fail_with="http-500")
    first = outcome()
    assert await streamed_text(await routing.open_upstream(None, request_for(), first)) == expected_text()
    assert len(keys.calls("a")) == 2 and first.failovers == 0
    assert await state.get_until(f"route:cool:{a.pk}") is None  # the retry's success ended it
    second = outcome()
    assert await streamed_text(await routing.open_upstream(None, request_for(), second)) == expected_text()
    assert second.credential_id == a.pk


@pytest.mark.parametrize(
    ("scenario", "status", "code"),
    [
        ("http-429", 429, "upstream_credentials_cooling"),  # usage window: until its reset
        ("http-402", 403, "model_not_allowed_on_any_credential"),  # plan gating for this model
        ("http-401", 503, "upstream_credentials_disabled"),  # refused: disabled
    ],
)
async def test_a_single_key_in_a_hard_state_is_refused_without_an_upstream_call(
    keys, state, scenario, status, code
):
    await keys.add("a")
    keys.behave("a", scenario=scenario)
    with pytest.raises(UpstreamError):
        await streamed_text(await routing.open_upstream(None, request_for(), outcome()))
    with pytest.raises(FailedResponse) as refused:
        await routing.open_upstream(None, request_for(), outcome())
    assert (refused.value.error.error_class.openai_status, refused.value.error.code) == (status, code)
    if status == 429:
        assert refused.value.error.retry_after and refused.value.error.retry_after >= 1
    assert len(keys.calls("a")) == 1


async def test_a_single_key_out_of_credit_is_refused_until_renewal(keys, state):
    a = await keys.add("a")
    a.billing = {"credits_remaining": 0, "period_end": time.time() + 3600}
    await a.asave()
    with pytest.raises(FailedResponse) as refused:
        await routing.open_upstream(None, request_for(), outcome())
    assert refused.value.error.code == "upstream_credentials_cooling"
    assert 3500 < refused.value.error.retry_after <= 3600
    assert keys.calls("a") == []


async def test_with_two_keys_a_transiently_cooling_key_waits_while_the_other_serves(keys, state, settings):
    settings.CC_MAX_RETRIES = 0
    a = await keys.add("a")
    b = await keys.add("b", max_concurrent=1)
    keys.behave("a", fail_first=1, fail_with="http-500")
    first = outcome()
    await streamed_text(await routing.open_upstream(None, request_for(), first))  # a fails -> b
    assert (first.credential_id, first.failovers) == (b.pk, 1)
    for _ in range(3):  # a is cooling and b is free: b serves, a is left alone
        result = outcome()
        await streamed_text(await routing.open_upstream(None, request_for(), result))
        assert result.credential_id == b.pk
    assert len(keys.calls("a")) == 1
    # b at its cap: rather than refusing, the cooling a is the last resort, and it recovers.
    keys.behave("b", scenario="paced deltas=40 delay_ms=50")
    holding = await routing.open_upstream(None, request_for(), outcome())
    last_resort = outcome()
    served = await routing.open_upstream(None, request_for(), last_resort)
    assert await streamed_text(served) == expected_text()
    assert last_resort.credential_id == a.pk
    await holding.aclose()
    assert await state.get_until(f"route:cool:{a.pk}") is None
    # With a hard state on a instead, b at its cap means a clear 429, not a call to a.
    keys.behave("a", scenario="http-429")
    keys.behave("b", scenario="text")
    await state.set_until(f"route:cool:{b.pk}", time.time() + 60, "usage window exhausted")
    with pytest.raises(UpstreamError):
        await streamed_text(await routing.open_upstream(None, request_for(), outcome()))
    calls = len(keys.calls("a"))
    with pytest.raises(FailedResponse) as refused:
        await routing.open_upstream(None, request_for(), outcome())
    assert refused.value.error.code == "upstream_credentials_cooling"
    assert len(keys.calls("a")) == calls


@pytest.mark.live
def test_through_the_gateway_one_5xx_never_makes_the_only_key_answer_429(live):
    # Three failures outlast the gateway's own retries (CC_MAX_RETRIES = 2): the client sees
    # the upstream's failure once, then the very next request is served by the same key.
    live.set_upstream_behaviour(fail_first=3, fail_with="http-500")
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {live.key}"}
    statuses = []
    for _ in range(3):
        response = httpx.post(f"{live.url}/v1/chat/completions", json=body, headers=headers, timeout=30)
        statuses.append(response.status_code)
        if response.status_code == 200:
            assert response.json()["choices"][0]["message"]["content"] == expected_text()
    assert statuses[0] >= 500 and statuses[1:] == [200, 200]
    assert len(live.sim_requests()) == 5


async def test_an_admin_edit_of_allowed_models_and_cap_applies_on_the_next_request(
    keys, settings, admin_client
):
    settings.CCSITE_CREDENTIAL_CACHE_SECONDS = 60  # only the change itself may refresh the pool
    a = await keys.add("a")
    b = await keys.add("b")
    first = outcome()
    await streamed_text(await routing.open_upstream(None, request_for(), first))
    assert first.credential_id == a.pk
    change = f"/admin/accounts/upstreamcredential/{a.pk}/change/"
    page = (await sync_to_async(admin_client.get)(change)).content.decode()
    assert 'name="cooldown_until"' not in page  # routing writes it; "Enable" clears it
    form = {"label": a.label, "enabled": "on", "weight": "1", "allowed_models": ["stepfun/Step-3.5-Flash"]}
    response = await sync_to_async(admin_client.post)(change, {**form, "max_concurrent": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    second = outcome()
    await streamed_text(await routing.open_upstream(None, request_for(), second))
    assert second.credential_id == b.pk  # a no longer serves this model
    # b's cap set to 1 in the admin: a second request at once is refused while one streams.
    b_change = f"/admin/accounts/upstreamcredential/{b.pk}/change/"
    b_form = {"label": b.label, "enabled": "on", "weight": "1", "max_concurrent": "1"}
    assert (await sync_to_async(admin_client.post)(b_change, b_form)).status_code == 302
    keys.behave("b", scenario="paced deltas=40 delay_ms=50")
    holding = await routing.open_upstream(None, request_for(), outcome())
    with pytest.raises(FailedResponse) as refused:
        await routing.open_upstream(None, request_for(), outcome())
    assert refused.value.error.code == "upstream_credentials_busy"
    await holding.aclose()


async def test_failovers_are_bounded_and_resend_the_same_body(keys, settings):
    settings.CCSITE_ROUTING_MAX_FAILOVERS = 1
    settings.CC_MAX_RETRIES = 0
    for label in ("a", "b", "c"):
        await keys.add(label)
        keys.behave(label, scenario="http-500")
    result = outcome()
    with pytest.raises(UpstreamError) as failed:
        await streamed_text(await routing.open_upstream(None, request_for("same words"), result))
    assert failed.value.failure.status == 500
    assert (len(keys.calls("a")), len(keys.calls("b")), len(keys.calls("c"))) == (1, 1, 0)
    assert result.failovers == 1
    sent = [keys.calls(label)[0]["body"] for label in ("a", "b")]
    assert "same words" in str(sent[0]) and sent[0] == sent[1]
