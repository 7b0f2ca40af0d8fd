"""A small server-drawn SVG bar chart of tokens per day (no script, no CDN)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

WIDTH, HEIGHT, GAP = 560, 120, 2


def daily_bars(series: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, Any]:
    """Bars (x, y, width, height, label) for each day from start to end, scaled to the busiest."""
    by_day = {row["start"].date(): row["input_tokens"] + row["output_tokens"] for row in series}
    days = max(1, (end - start).days)
    peak = max(by_day.values(), default=0) or 1
    slot = WIDTH / days
    bars = []
    for index in range(days):
        day = (start + timedelta(days=index)).date()
        tokens = by_day.get(day, 0)
        height = round(tokens / peak * (HEIGHT - 20)) if tokens else 0
        bars.append(
            {
                "x": round(index * slot + GAP / 2, 1),
                "y": HEIGHT - height,
                "width": round(max(1.0, slot - GAP), 1),
                "height": height,
                "label": f"{day:%b %d}: {tokens:,} tokens",
                "tokens": tokens,
            }
        )
    return {"width": WIDTH, "height": HEIGHT, "bars": bars, "peak": peak if by_day else 0}
