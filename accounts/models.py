"""Users, their client API keys, and the team's upstream Command Code credentials."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


class BudgetPeriod(models.TextChoices):
    DAY = "day", "day"
    WEEK = "week", "week (from Monday)"
    MONTH = "month", "month"


class UsageLimits(models.Model):
    """What one user (all their keys together) or one key may use; empty fields set no limit.

    Periods are calendar periods in UTC. A budget is in tokens or in estimated cost (US dollars),
    not both.
    """

    allowed_models = models.JSONField(
        default=list,
        blank=True,
        help_text="Model ids, aliases or wildcards (e.g. claude-*) this may call; empty = any "
        "(on a key: the user's list).",
    )
    rpm_limit = models.PositiveIntegerField(
        "requests per minute", null=True, blank=True, help_text="Empty: no limit."
    )
    tpm_limit = models.PositiveIntegerField(
        "tokens per minute", null=True, blank=True, help_text="Input + output tokens. Empty: no limit."
    )
    concurrent_limit = models.PositiveIntegerField(
        "concurrent requests", null=True, blank=True, help_text="Empty: no limit."
    )
    budget_tokens = models.PositiveBigIntegerField(
        "budget (tokens)", null=True, blank=True, help_text="Tokens per budget period. Empty: no limit."
    )
    budget_cost = models.DecimalField(
        "budget (USD)",
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Estimated cost per budget period (cache reads priced separately). Empty: no limit.",
    )
    budget_period = models.CharField(max_length=5, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH)

    class Meta:
        abstract = True


class User(UsageLimits, AbstractUser):
    """A team member. Custom from the first migration so fields can be added later.

    The limit fields bound everything the user's keys do together.
    """

    class Meta:
        db_table = "accounts_user"


class ClientKey(UsageLimits):
    """A key a team member's tools send to ccsite. Only a lookup prefix and a digest are stored.

    Its limit fields bound this key alone, on top of its user's; its allowed models, when set,
    replace the user's list.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="client_keys")
    name = models.CharField(max_length=100, default="default")
    prefix = models.CharField(max_length=32, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, now: datetime) -> bool:
        expired = self.expires_at is not None and self.expires_at <= now
        return not self.revoked and not expired


class UpstreamCredential(models.Model):
    """A Command Code API key of the team; the secret is encrypted at rest (accounts/crypto.py)."""

    label = models.CharField(max_length=100, unique=True)
    secret_encrypted = models.TextField(editable=False)
    secret_last4 = models.CharField(max_length=4, editable=False)
    enabled = models.BooleanField(default=True)
    weight = models.PositiveIntegerField(default=1, help_text="Share of traffic when routing.")
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="Upstream model ids this key may serve; empty = all."
    )
    max_concurrent = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many requests at once; empty = no limit."
    )
    last_error = models.CharField(max_length=300, blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    cooldown_until = models.DateTimeField(null=True, blank=True)
    # Written by routing (proxy/routing.py) off the request path; shown in the admin.
    cooldown_reason = models.CharField(max_length=200, blank=True, editable=False)
    disabled_reason = models.CharField(
        max_length=300, blank=True, help_text="Why routing disabled this key (e.g. refused with 401)."
    )
    billing = models.JSONField(default=dict, blank=True, editable=False)
    billing_refreshed_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return f"{self.label} (…{self.secret_last4})"

    def __repr__(self) -> str:
        # Never the ciphertext either: it is only as safe as the encryption key.
        return f"<UpstreamCredential {self.pk} {self.label!r} …{self.secret_last4}>"

    @property
    def masked_secret(self) -> str:
        return f"…{self.secret_last4}"
