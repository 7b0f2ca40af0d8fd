"""Estimated cost: a pure function of token counts and prices, fed by the catalog's prices."""

from __future__ import annotations

import time
from decimal import Decimal

from catalog import services as catalog_services
from catalog import snapshot
from proxy.outcomes import RequestOutcome
from proxy.translate.events import Usage
from usage.models import RequestLog
from usage.pricing import Prices, cost_usd
from usage.recorder import QueuedOutcome, RequestLogWriter, build_row

MODEL = "deepseek/deepseek-v4-flash"


def test_cost_prices_each_kind_of_token():
    usage = Usage(
        input_tokens=1_000_000 + 2_000_000 + 500_000,
        cache_read_tokens=2_000_000,
        cache_write_tokens=500_000,
        output_tokens=100_000,
    )
    prices = Prices(
        input=Decimal("1.00"), output=Decimal("4.00"), cache_read=Decimal("0.10"), cache_write=Decimal("1.25")
    )
    assert cost_usd(usage, prices) == Decimal("1.00") + Decimal("0.20") + Decimal("0.625") + Decimal("0.40")


def test_cache_prices_default_to_the_input_price_and_no_prices_no_cost():
    usage = Usage(
        input_tokens=3_000_000, cache_read_tokens=1_000_000, cache_write_tokens=1_000_000, output_tokens=0
    )
    assert cost_usd(usage, Prices(input=Decimal("2"), output=Decimal("8"))) == Decimal("6")
    assert cost_usd(usage, None) is None


def test_a_logged_request_is_costed_with_the_catalogs_prices(transactional_db):
    catalog_services.set_prices(MODEL, input="0.27", output="1.10", cache_read="0.07")
    snapshot.reload()
    outcome = RequestOutcome("openai-chat", None, MODEL, MODEL, False)
    outcome.request_id, outcome.status, outcome.http_status = "req_cost", "ok", 200
    outcome.usage = Usage(input_tokens=1_500_000, cache_read_tokens=1_000_000, output_tokens=200_000)
    row = build_row(QueuedOutcome(outcome, time.time(), 5.0))
    assert row["cost_usd"] == Decimal("0.27") * Decimal("0.5") + Decimal("0.07") + Decimal("1.10") * Decimal(
        "0.2"
    )
    writer = RequestLogWriter()
    writer.record(outcome)
    assert writer.flush()
    assert RequestLog.objects.get(request_id="req_cost").cost_usd == row["cost_usd"]
    unpriced = build_row(
        QueuedOutcome(RequestOutcome("openai-chat", None, "x", "vendor/unknown", False), time.time(), 1.0)
    )
    assert unpriced["cost_usd"] is None


def test_costs_are_kept_at_8_places_and_the_report_sums_them_exactly(transactional_db):
    from datetime import UTC, datetime, timedelta

    from usage.selectors import ReportFilter, totals

    catalog_services.set_prices(MODEL, input="0.135", output="1.10")  # 1 token: 0.000000135 USD
    snapshot.reload()
    writer = RequestLogWriter()
    for n in range(7):
        outcome = RequestOutcome("openai-chat", None, MODEL, MODEL, False)
        outcome.request_id, outcome.status, outcome.http_status = f"req_cost{n}", "ok", 200
        outcome.usage = Usage(input_tokens=1 + n * 1_000_003, output_tokens=n)
        writer.record(outcome)
    assert writer.flush()
    costs = list(RequestLog.objects.order_by("request_id").values_list("cost_usd", flat=True))
    assert costs[0] == Decimal("0.00000014")  # 0.000000135 rounded half up, as PostgreSQL rounds
    everything = ReportFilter(
        since=datetime(2000, 1, 1, tzinfo=UTC), until=datetime.now(UTC) + timedelta(hours=1)
    )
    assert totals(everything)["cost_usd"] == sum(costs)
