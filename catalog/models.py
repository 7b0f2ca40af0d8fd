"""The model catalog: upstream models, operator aliases, live-refresh records, change versions."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Model(models.Model):
    """A Command Code model the team may (or may not) use, with its prices."""

    class Source(models.TextChoices):
        BUILTIN = "builtin", "builtin (CLI catalog)"
        LIVE = "live", "live (upstream list)"
        MANUAL = "manual", "manual"

    upstream_id = models.CharField("upstream id", max_length=200, unique=True)
    display_name = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    context_window = models.PositiveIntegerField(default=200_000, help_text="Tokens.")
    accepts_images = models.BooleanField(default=True)
    reasoning_levels = models.JSONField(
        default=list,
        blank=True,
        help_text='Reasoning efforts it supports (protocol §13), e.g. ["low", "high"].',
    )
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    first_seen_upstream = models.DateTimeField(null=True, blank=True, editable=False)
    last_seen_upstream = models.DateTimeField(null=True, blank=True, editable=False)
    missing_upstream = models.BooleanField(
        default=False, editable=False, help_text="Absent from the last successful live refresh."
    )
    # Prices per million tokens, in the operator's currency (USD by convention); empty = unpriced.
    price_input = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    price_cache_read = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    price_cache_write = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    price_output = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["upstream_id"]

    def __str__(self) -> str:
        return self.upstream_id

    @property
    def vendor(self) -> str:
        if "/" in self.upstream_id:
            return self.upstream_id.split("/", 1)[0]
        return "anthropic" if self.upstream_id.startswith("claude") else "openai"


class ModelAlias(models.Model):
    """A name clients send that means a model; ``*`` in the name matches any characters."""

    name = models.CharField(max_length=200, unique=True, help_text="Case-insensitive; e.g. claude-haiku-*")
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="aliases")

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "model aliases"

    def __str__(self) -> str:
        return f"{self.name} → {self.model.upstream_id}"

    @property
    def is_wildcard(self) -> bool:
        return "*" in self.name


class RefreshRecord(models.Model):
    """One live refresh of the catalog from the upstream's model list, and what it changed."""

    started_at = models.DateTimeField(default=timezone.now)
    trigger = models.CharField(max_length=20)  # schedule, admin, cli
    ok = models.BooleanField(default=False)
    error = models.CharField(max_length=500, blank=True)
    added = models.JSONField(default=list, blank=True)
    vanished = models.JSONField(default=list, blank=True)
    returned = models.JSONField(default=list, blank=True)
    listed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        state = "ok" if self.ok else f"failed: {self.error}"
        return f"refresh {self.started_at:%Y-%m-%d %H:%M} ({self.trigger}) {state}"


class ChangeVersion(models.Model):
    """The version of a snapshot's data (ccsite/invalidation.py): bumped on every change."""

    name = models.CharField(max_length=100, primary_key=True)
    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"
