"""The admin credential list shows live routing state: state, cooldown reason and until, in
flight now, last error, last use and the billing snapshot."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import async_to_sync

from ccsite.sharedstate import MemoryState, reset_shared_state
from tests.factories import make_credential


@pytest.fixture
def state():
    backend = MemoryState()
    reset_shared_state(backend)
    yield backend
    reset_shared_state(None)


def test_the_changelist_shows_state_cooldown_in_flight_and_billing(admin_client, state):
    cooled = make_credential(label="cooled", api_key="user_admin_000000000001")
    busy = make_credential(label="busy", api_key="user_admin_000000000002", max_concurrent=3)
    off = make_credential(label="off", api_key="user_admin_000000000003")
    off.enabled, off.disabled_reason = False, "refused by Command Code (401)"
    off.billing = {
        "credits_remaining": 12.5,
        "plan": "individual-pro",
        "period_end_iso": "2026-12-24T00:00:00Z",
    }
    off.save()
    async_to_sync(state.set_until)(f"route:cool:{cooled.pk}", time.time() + 300, "usage window exhausted")
    for _ in range(2):
        async_to_sync(state.acquire_slot)(f"route:slots:{busy.pk}", 3, 60)
    page = admin_client.get("/admin/accounts/upstreamcredential/").content.decode()
    assert "usage window exhausted" in page and "cooling" in page
    assert "disabled: refused by Command Code (401)" in page
    assert "$12.5 left, individual-pro, renews 2026-12-24" in page
    row = page[page.index(">busy<") :]
    assert '<td class="field-in_flight">2</td>' in row[:2000]
    assert "user_admin_" not in page
