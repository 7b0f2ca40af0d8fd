"""Request-log rows for report tests, varied on purpose (users, keys, models, outcomes, times)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from usage.models import RequestLog
from usage.recorder import latency_bucket

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
        rows.append(
            RequestLog(
                created_at=created,
                hour=int(created.timestamp() // 3600),
                request_id=f"req_{seed}_{n:08d}",
                user_id=users[who],
                client_key_id=keys[who],
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
                ttft_bucket=None if ttft is None else latency_bucket(ttft),
                duration_bucket=latency_bucket(duration),
                input_tokens=uncached + cache_read + cache_write,
                uncached_input_tokens=uncached,
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
                output_tokens=rng.randrange(1000),
                reasoning_tokens=rng.randrange(100),
                tokens_estimated=outcome == "cancelled",
                cost_usd=Decimal(rng.randrange(1, 10_000)) / Decimal(1_000_000),
            )
        )
    return rows


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)
