"""One row per /v1 request (``RequestLog``), its hourly roll-up (``UsageHour``, what reports
read) and, when opted in, its redacted bodies.

Foreign keys carry no database constraint: log rows are written in batches by a background
writer, must never fail because a user or key was deleted meanwhile, and outlive both.
``hour`` (hours since the Unix epoch) and the latency buckets are computed when a row is
written, so reports group and rank with plain indexed integer columns on any database.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from usage import histogram


class Surface(models.TextChoices):
    OPENAI_CHAT = "openai-chat"
    ANTHROPIC_MESSAGES = "anthropic-messages"
    COUNT_TOKENS = "count-tokens"
    RESPONSES = "responses"
    MODELS = "models"


class Outcome(models.TextChoices):
    OK = "ok"
    ERROR = "error"
    INVALID = "invalid"
    UNAUTHORIZED = "unauthorized"
    CANCELLED = "cancelled"
    LIMITED = "limited"


def _loose_fk(model: str, related_name: str) -> models.ForeignKey:
    """A request log's link to a user, key or credential. No index of its own: the
    ``(column, hour)`` indexes of RequestLog start with it, and every index is one more B-tree
    the log writer updates per row (three fewer cut the SQLite insert by about a tenth)."""
    return models.ForeignKey(
        model,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name=related_name,
    )


class RequestLog(models.Model):
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    hour = models.IntegerField(help_text="Hours since 1970-01-01 UTC (report buckets).")
    request_id = models.CharField(max_length=64, db_index=True)
    user = _loose_fk(settings.AUTH_USER_MODEL, "request_logs")
    client_key = _loose_fk("accounts.ClientKey", "request_logs")
    credential = _loose_fk("accounts.UpstreamCredential", "request_logs")
    surface = models.CharField(max_length=24, choices=Surface.choices)
    client_model = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=200, blank=True, help_text="The upstream model served.")
    stream = models.BooleanField(default=False)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    first_token_ms = models.FloatField(null=True, blank=True)
    duration_ms = models.FloatField(default=0)
    ttft_bucket = models.SmallIntegerField(null=True, blank=True)
    duration_bucket = models.SmallIntegerField(default=0)
    failovers = models.PositiveSmallIntegerField(default=0)
    input_tokens = models.PositiveIntegerField(default=0, help_text="All input, cached included.")
    uncached_input_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0, help_text="Reasoning included.")
    reasoning_tokens = models.PositiveIntegerField(default=0)
    tokens_estimated = models.BooleanField(
        default=False, help_text="Estimated by the gateway, not reported by the upstream."
    )
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    session_id = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["hour"], name="usage_log_hour"),
            models.Index(fields=["user", "hour"], name="usage_log_user_hour"),
            models.Index(fields=["client_key", "hour"], name="usage_log_key_hour"),
            models.Index(fields=["model", "hour"], name="usage_log_model_hour"),
            models.Index(fields=["credential", "hour"], name="usage_log_cred_hour"),
            models.Index(fields=["surface", "hour"], name="usage_log_surface_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.surface} {self.outcome}"


class RequestBody(models.Model):
    """Opt-in (CCSITE_REQUEST_LOG_BODIES): size-capped, redacted request and response bodies."""

    request_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    request_body = models.TextField(blank=True)
    response_body = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.request_id


TTFT_COLUMNS = tuple(f"ttft_{index:02d}" for index in range(histogram.BUCKETS))
DURATION_COLUMNS = tuple(f"duration_{index:02d}" for index in range(histogram.BUCKETS))
# What one UsageHour row stands for (its unique key); the roll-up writer sums by it.
USAGE_HOUR_GRAIN = (
    "hour",
    "user_id",
    "client_key_id",
    "credential_id",
    "surface",
    "model",
    "outcome",
    "error_code",
    "http_status",
)


class _UsageSums(models.Model):
    """What a roll-up row sums (the histogram columns are added to each concrete model below)."""

    requests = models.IntegerField(default=0)
    estimated = models.IntegerField(default=0, help_text="Requests whose tokens were estimated.")
    priced = models.IntegerField(default=0, help_text="Requests with a cost estimate.")
    input_tokens = models.BigIntegerField(default=0)
    uncached_input_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    cost_usd_e8 = models.BigIntegerField(default=0, help_text="Cost in units of 1e-8 USD (exact sums).")
    failovers = models.IntegerField(default=0)
    duration_ms_sum = models.FloatField(default=0)
    ttft_ms_sum = models.FloatField(default=0)

    class Meta:
        abstract = True


class UsageHour(_UsageSums):
    """The request log summed per hour and per everything a report filters or groups on, with
    a fixed latency histogram for TTFT and duration (one count column per coarse bucket of
    usage/histogram.py, added below: ``ttft_00`` to ``ttft_80``, ``duration_00`` to ``duration_80``).

    Maintained by the request-log writer in the same transaction as the rows it sums
    (usage/rollups.py), rebuilt from the rows by ``manage.py rebuild_usage_rollups``, and pruned
    with them, so it always equals the sums of the rows present. ``0`` stands for no user, key
    or credential (a NULL would never match the unique grain, so upserts could not add to it).
    """

    hour = models.IntegerField(help_text="Hours since 1970-01-01 UTC.")
    user_id = models.IntegerField(default=0)
    client_key_id = models.IntegerField(default=0)
    credential_id = models.IntegerField(default=0)
    surface = models.CharField(max_length=24)
    model = models.CharField(max_length=200, help_text="The upstream model served.")
    outcome = models.CharField(max_length=16)
    error_code = models.CharField(max_length=64)
    http_status = models.IntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=list(USAGE_HOUR_GRAIN), name="usage_hour_grain")]
        indexes = [
            models.Index(fields=["user_id", "hour"], name="usage_hour_user"),
            models.Index(fields=["client_key_id", "hour"], name="usage_hour_key"),
            models.Index(fields=["credential_id", "hour"], name="usage_hour_cred"),
            models.Index(fields=["model", "hour"], name="usage_hour_model"),
        ]

    def __str__(self) -> str:
        return f"hour {self.hour} {self.model} {self.outcome} x{self.requests}"


class UsageHourSummary(_UsageSums):
    """The same sums per hour and kind of outcome only, for the unfiltered report: a few rows
    an hour however many users, keys, models and credentials there are. Kept, rebuilt and
    pruned together with ``UsageHour``."""

    hour = models.IntegerField(help_text="Hours since 1970-01-01 UTC.")
    outcome = models.CharField(max_length=16)
    error_code = models.CharField(max_length=64)
    http_status = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "outcome", "error_code", "http_status"], name="usage_hour_summary_grain"
            )
        ]

    def __str__(self) -> str:
        return f"hour {self.hour} {self.outcome} x{self.requests}"


for _model in (UsageHour, UsageHourSummary):
    for _name in (*TTFT_COLUMNS, *DURATION_COLUMNS):
        _model.add_to_class(_name, models.IntegerField(default=0))
