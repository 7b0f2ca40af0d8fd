"""Request-log rows for report tests, varied on purpose (users, keys, models, outcomes, times)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from usage import rollups
from usage.histogram import fine_bucket
from usage.models import RequestLog

OUTCOMES = [
    ("ok", 200, ""),
    ("ok", 200, ""),
    ("ok", 200, ""),
    ("error", 502, "retryable"),
    ("invalid", 400, "invalid_json"),
    ("cancelled", 200, ""),
]
MODELS = ["deepseek/deepseek-v4-flash", "moonshotai/kimi-k2", "anthropic/claude-sonnet-4-6"]


def make_rows(
    count: int,
    *,
    users: list[int],
    keys: list[int],
    credentials: list[int | None],
    start: datetime,
    hours: int,
    seed: int = 7,
) -> list[RequestLog]:
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        created = start + timedelta(seconds=rng.randrange(hours * 3600))
        outcome, status, code = rng.choice(OUTCOMES)
        cache_read, cache_write, uncached = rng.randrange(2000), rng.randrange(300), rng.randrange(1, 800)
        ttft = None if outcome != "ok" else rng.uniform(50, 2000)
        duration = rng.uniform(100, 30_000)
        who = rng.randrange(len(users))
        anonymous = outcome == "invalid" and rng.random() < 0.2  # refused before a key was known
        rows.append(
            RequestLog(
                created_at=created,
                hour=int(created.timestamp() // 3600),
                request_id=f"req_{seed}_{n:08d}",
                user_id=None if anonymous else users[who],
                client_key_id=None if anonymous else keys[who],
                credential_id=rng.choice(credentials),
                surface=rng.choice(["openai-chat", "anthropic-messages"]),
                client_model=rng.choice(MODELS),
                model=rng.choice(MODELS),
                stream=rng.random() < 0.7,
                outcome=outcome,
                http_status=status,
                error_code=code,
                first_token_ms=ttft,
                duration_ms=duration,
                ttft_bucket=None if ttft is None else fine_bucket(ttft),
                duration_bucket=fine_bucket(duration),
                input_tokens=uncached + cache_read + cache_write,
                uncached_input_tokens=uncached,
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
                output_tokens=rng.randrange(1000),
                reasoning_tokens=rng.randrange(100),
                tokens_estimated=outcome == "cancelled",
                cost_usd=None if rng.random() < 0.1 else Decimal(rng.randrange(1, 10**8)) / Decimal(10**8),
            )
        )
    return rows


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def store(rows: list[RequestLog]) -> list[RequestLog]:
    """Insert rows made here and roll them up, as the request-log writer would."""
    RequestLog.objects.bulk_create(rows)
    rollups.rebuild()
    return rows
