"""Simulator bodies for the account, telemetry and catalog routes (protocol §4, §11, §13)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from proxy.translate.catalog import all_models

# The "max" plan covers every model (§11), so the CLI's client-side plan hint never blocks one.
PLAN_ID = "individual-max"
MONTHLY_CREDITS = 150
CATALOG_CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z; the catalog has no dates


def whoami(fingerprint: str) -> dict[str, Any]:
    """§11: the CLI treats identity as loaded when ``success`` and ``user`` are set."""
    user = {
        "id": f"user_sim_{fingerprint}",
        "name": "Simulator User",
        "email": "simulator@example.invalid",
        "userName": "simulator",
    }
    return {"success": True, "user": user, "org": None}


def credits(monthly: float | None = None) -> dict[str, Any]:
    # §11 "fake-server responses that satisfy CLI 1.64.0": credits plus windowLimits.limited false.
    return {
        "credits": {
            "monthlyCredits": MONTHLY_CREDITS if monthly is None else monthly,
            "purchasedCredits": 0,
            "freeCredits": 0,
            "belowThreshold": False,
            "creditThreshold": 1,
            "planId": PLAN_ID,
        },
        "windowLimits": {"limited": False},
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def subscriptions(now: float | None = None, period_days: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    day = 86400
    left = 15 if period_days is None else period_days
    data = {
        "planId": PLAN_ID,
        "status": "active",
        "currentPeriodStart": _iso(now + left * day - 30 * day),
        "currentPeriodEnd": _iso(now + left * day),
        "cancelAtPeriodEnd": False,
    }
    return {"success": True, "data": data}


def usage_summary(request_count: int) -> dict[str, Any]:
    """§11: the CLI reads totalCount, totalCost and periodBasis."""
    return {"success": True, "totalCount": request_count, "totalCost": 0, "periodBasis": "billing-period"}


def success() -> dict[str, Any]:
    """Telemetry and every other /alpha route the CLI calls (§11 "anything else")."""
    return {"success": True}


def model_list() -> dict[str, Any]:
    """``GET /provider/v1/models`` (§13): the 1.64.0 catalog in the live list shape."""
    data = [
        {
            "id": info.id,
            "name": info.id,
            "context_length": info.context_window,
            "created": CATALOG_CREATED,
            "owned_by": info.owned_by,
        }
        for info in all_models()
    ]
    return {"object": "list", "data": data}
