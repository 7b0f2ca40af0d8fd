"""The routing policy in force: the operator's choice in the admin, else CCSITE_ROUTING_POLICY.

API
    ``policy() -> str``  (hot path: no query, no await)
        ``auto`` or one of ``proxy.routing_policies.POLICIES``: the admin's override
        (``proxy.models.RoutingSettings``) when one is set, else the setting.
    ``changed()``  (sync; after the row was saved)
        ``bump("routing-settings")`` (ccsite/invalidation.py): the snapshot is reloaded at once
        in this process and within CCSITE_INVALIDATION_POLL_SECONDS (0.5 s) in every other.

The snapshot is loaded when a gateway process starts (``invalidation.start`` runs every
registered reload) and on every bump; until then (an in-process test client) there is no
override.
"""

from __future__ import annotations

from ccsite import invalidation
from ccsite.settings_cache import cached_settings

CHANGE_NAME = "routing-settings"

_override = ""  # "" = no override: the setting applies


def policy() -> str:
    return _override or cached_settings.CCSITE_ROUTING_POLICY


def override() -> str:
    return _override


def reload() -> None:
    """Read the settings row into the snapshot (sync; one query, off the request path)."""
    global _override
    from proxy.models import RoutingSettings

    value = RoutingSettings.objects.filter(pk=RoutingSettings.SINGLETON_PK).values_list("policy", flat=True)
    _override = value.first() or ""


def forget() -> None:
    """Drop the override (tests: the row went with the test's transaction)."""
    global _override
    _override = ""


def changed() -> None:
    invalidation.bump(CHANGE_NAME)


def install() -> None:
    invalidation.on_change(CHANGE_NAME, reload)
