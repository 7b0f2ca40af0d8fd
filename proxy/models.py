"""Tables of the gateway itself: the operator's routing settings (one row)."""

from __future__ import annotations

from typing import Any

from django.db import models

from proxy.routing_policies import POLICIES

POLICY_CHOICES = [
    ("", "the server setting (CCSITE_ROUTING_POLICY)"),
    ("auto", "auto: daily_burn once billing is known, else round_robin"),
    *((name, name) for name in POLICIES),
]


class RoutingSettings(models.Model):
    """How upstream credentials are chosen, as the operator set it in the admin (a singleton).

    An empty ``policy`` keeps the server's ``CCSITE_ROUTING_POLICY``. The hot path never reads
    this table: ``proxy.routing_settings`` keeps an in-process snapshot of it.
    """

    SINGLETON_PK = 1

    policy = models.CharField(
        max_length=32,
        blank=True,
        default="",
        choices=POLICY_CHOICES,
        help_text="Overrides CCSITE_ROUTING_POLICY in every gateway process within a second.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "routing settings"
        verbose_name_plural = "routing settings"

    def __str__(self) -> str:
        return "Routing settings"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.pk = self.SINGLETON_PK  # one row, whatever the caller set
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> RoutingSettings:
        row, _ = cls.objects.get_or_create(pk=cls.SINGLETON_PK)
        return row
