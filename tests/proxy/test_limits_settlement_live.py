"""Budgets and token windows settle to what the request log records, also when a request
failed before the upstream began an answer (nothing was generated: nothing is charged)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.proxy.test_limits_live import chat_body, fire, logged_rows

pytestmark = [pytest.mark.live]


def limit_use(live, name: str) -> int:
    me = httpx.get(f"{live.url}/v1/me", headers={"Authorization": f"Bearer {live.key}"}, timeout=10).json()
    return next(entry["used"] for entry in me["limits"] if entry["limit"] == name)


def settled_use(live, name: str, expected: int, timeout: float = 3.0) -> int:
    """The limit's use once settlement (a task after the response) has had time to run."""
    deadline = time.monotonic() + timeout
    used = limit_use(live, name)
    while used != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        used = limit_use(live, name)
    return used


@pytest.mark.parametrize("scenario", ["http-500", "http-401", "http-429-plain"])
def test_a_request_that_failed_before_any_answer_is_not_charged(live, scenario):
    key = live.limit_key(budget_tokens=100_000, budget_period="day", tpm_limit=100_000)
    failed = asyncio.run(fire(live, 1, chat_body(f"[sim:{scenario}] hi")))[0]
    assert failed.status_code in (429, 502, 503)
    (row,) = logged_rows(key, 1)
    assert (row.input_tokens, row.output_tokens, row.tokens_estimated) == (0, 0, False)
    assert settled_use(live, "budget_tokens", 0) == 0
    assert settled_use(live, "tokens_per_minute", 0) == 0


def test_a_budget_charges_what_a_served_and_a_failed_request_logged(live):
    key = live.limit_key(budget_tokens=100_000, budget_period="day")
    served = asyncio.run(fire(live, 1, chat_body("[sim:cache-usage] hi")))[0]
    failed = asyncio.run(fire(live, 1, chat_body("[sim:http-500] hi")))[0]
    assert (served.status_code, failed.status_code) == (200, 502)
    rows = logged_rows(key, 2)
    logged = sum(row.input_tokens + row.output_tokens for row in rows)
    assert logged == served.json()["usage"]["total_tokens"]
    assert settled_use(live, "budget_tokens", logged) == logged
