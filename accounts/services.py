"""Writes for accounts: every admin action, command and view goes through these."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import crypto, keys
from accounts.keycache import key_cache
from accounts.limits import PERIODS
from accounts.models import ClientKey, UpstreamCredential, User
from accounts.signals import credentials_changed
from ccsite import invalidation


class AccountsError(Exception):
    """A request to a service that cannot be carried out; the message is safe to show."""


def user_get_or_create(*, username: str) -> tuple[User, bool]:
    username = username.strip()
    if not username:
        raise AccountsError("a user name is required")
    user, created = User.objects.get_or_create(username=username)
    if created:  # explicitly without a password (Django's marker), until an operator sets one
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user, created


def client_key_create(
    *, user: User, name: str = "default", expires_at: datetime | None = None
) -> tuple[ClientKey, str]:
    """Create a key; the returned secret is never stored and cannot be shown again."""
    secret = keys.generate_key()
    key = ClientKey.objects.create(
        user=user,
        name=name.strip() or "default",
        prefix=keys.key_prefix(secret),
        digest=keys.key_digest(secret, settings.CLIENT_KEY_PEPPER),
        expires_at=expires_at,
    )
    return key, secret


def client_key_revoke(*, key: ClientKey) -> bool:
    """Revoke the key (idempotent); False when it was revoked already."""
    revoked_now = bool(
        ClientKey.objects.filter(pk=key.pk, revoked=False).update(revoked=True, revoked_at=timezone.now())
    )
    key.refresh_from_db(fields=["revoked", "revoked_at"])
    # Immediately in this process; other processes within the invalidation poll.
    key_cache.forget(key.prefix)
    invalidation.bump(KEYS_CHANGED)
    return revoked_now


def clean_api_key(api_key: str) -> str:
    api_key = api_key.strip()
    if not api_key:
        raise AccountsError("the API key is empty")
    if any(ch.isspace() for ch in api_key) or len(api_key) < 8:
        raise AccountsError("the API key does not look like a Command Code key")
    return api_key


@dataclass(frozen=True)
class CredentialOptions:
    weight: int = 1
    enabled: bool = True
    allowed_models: tuple[str, ...] = ()
    max_concurrent: int | None = None


def credential_add(
    *, label: str, api_key: str, options: CredentialOptions | None = None
) -> UpstreamCredential:
    options = options or CredentialOptions()
    label = label.strip()
    if not label:
        raise AccountsError("a label is required")
    if UpstreamCredential.objects.filter(label=label).exists():
        raise AccountsError(f"a credential labelled {label!r} already exists")
    if options.weight < 0 or (options.max_concurrent is not None and options.max_concurrent < 1):
        raise AccountsError("weight must be 0 or more and max concurrent at least 1")
    api_key = clean_api_key(api_key)
    return UpstreamCredential.objects.create(
        label=label,
        secret_encrypted=crypto.encrypt_secret(api_key),
        secret_last4=api_key[-4:],
        weight=options.weight,
        enabled=options.enabled,
        allowed_models=list(options.allowed_models),
        max_concurrent=options.max_concurrent,
    )


def credential_set_secret(*, credential: UpstreamCredential, api_key: str) -> None:
    """Put a new secret on the credential (unsaved: the caller saves it with its other edits)."""
    api_key = clean_api_key(api_key)
    credential.secret_encrypted = crypto.encrypt_secret(api_key)
    credential.secret_last4 = api_key[-4:]
    credential.last_error = ""
    credential.cooldown_until = None


def credential_set_enabled(*, credentials: list[UpstreamCredential], enabled: bool) -> int:
    """Enable or disable; enabling also forgets why routing disabled or cooled the key."""
    ids = [credential.pk for credential in credentials]
    fields: dict[str, object] = {"enabled": enabled}
    if enabled:
        fields.update(disabled_reason="", cooldown_until=None, cooldown_reason="")
    count = UpstreamCredential.objects.filter(pk__in=ids).update(**fields)
    credentials_changed.send(sender=UpstreamCredential, ids=ids, enabled=enabled)
    return count


@transaction.atomic
def credentials_reencrypt() -> int:
    """Re-encrypt every stored secret under the first configured key (after adding a new one)."""
    count = 0
    for credential in UpstreamCredential.objects.select_for_update():
        token = crypto.reencrypt_secret(credential.secret_encrypted)
        UpstreamCredential.objects.filter(pk=credential.pk).update(secret_encrypted=token)
        count += 1
    return count


def cli_auth_api_key(path: Path) -> str:
    """The apiKey of a logged-in Command Code CLI's auth file (protocol §2)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AccountsError(f"no Command Code auth file at {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise AccountsError(f"{path} is not a readable Command Code auth file") from None
    api_key = data.get("apiKey") if isinstance(data, dict) else None
    if not isinstance(api_key, str) or not api_key.strip():
        raise AccountsError(f"{path} holds no apiKey; log in with the Command Code CLI first")
    return api_key.strip()


LIMIT_FIELDS = (
    "allowed_models",
    "rpm_limit",
    "tpm_limit",
    "concurrent_limit",
    "budget_tokens",
    "budget_cost",
    "budget_period",
)


KEYS_CHANGED = "client-keys"


def limits_changed() -> None:
    """Make every gateway process drop its cached keys, so they load the new limits: at once
    here, in every other process within the invalidation poll (about a second)."""
    invalidation.bump(KEYS_CHANGED)  # runs key_cache.clear here (accounts/apps.py)
    key_cache.clear()


# The columns' ranges (a 32-bit integer, a 64-bit one, 12 digits with 4 decimals), the same on
# every database: SQLite would store more, PostgreSQL refuses it with an error.
LIMIT_MAXIMUMS = {
    "rpm_limit": 2_147_483_647,
    "tpm_limit": 2_147_483_647,
    "concurrent_limit": 2_147_483_647,
    "budget_tokens": 9_223_372_036_854_775_807,
}
MAX_BUDGET_COST = Decimal(100_000_000)
BUDGET_COST_STEP = Decimal("0.0001")


def limits_update(*, target: User | ClientKey, changes: dict[str, object]) -> None:
    """Set limit fields on a user or a key (``changes``: field name -> value, None clears).

    A token budget and a cost budget exclude each other: setting one clears the other.
    """
    unknown = set(changes) - set(LIMIT_FIELDS)
    if unknown:
        raise AccountsError(f"not a limit: {', '.join(sorted(unknown))}")
    for name in ("rpm_limit", "tpm_limit", "concurrent_limit", "budget_tokens"):
        value = changes.get(name)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise AccountsError(f"{name.replace('_', ' ')} must be a whole number of at least 1")
        if value is not None and value > LIMIT_MAXIMUMS[name]:
            raise AccountsError(f"{name.replace('_', ' ')} can be at most {LIMIT_MAXIMUMS[name]:,}")
    if changes.get("budget_cost") is not None and Decimal(str(changes["budget_cost"])) <= 0:
        raise AccountsError("the cost budget must be more than 0")
    if changes.get("budget_cost") is not None and Decimal(str(changes["budget_cost"])) % BUDGET_COST_STEP:
        # The column keeps 4 decimals: a finer amount would be rounded silently (1e-7 to 0).
        raise AccountsError(f"the cost budget is in steps of {BUDGET_COST_STEP} USD (at most 4 decimals)")
    if changes.get("budget_cost") is not None and Decimal(str(changes["budget_cost"])) >= MAX_BUDGET_COST:
        raise AccountsError(f"the cost budget must be less than {MAX_BUDGET_COST:,} USD")
    if changes.get("budget_period") not in (None, *PERIODS):
        raise AccountsError(f"the budget period must be one of {', '.join(PERIODS)}")
    if changes.get("budget_tokens") is not None:
        changes = {"budget_cost": None, **changes}
    if changes.get("budget_cost") is not None:
        changes = {"budget_tokens": None, **changes, "budget_cost": Decimal(str(changes["budget_cost"]))}
    if "budget_period" in changes and changes["budget_period"] is None:
        changes = {**changes, "budget_period": "month"}
    if "allowed_models" in changes:
        models = changes["allowed_models"] or []
        changes = {**changes, "allowed_models": [str(m).strip() for m in models if str(m).strip()]}  # type: ignore[attr-defined]
    for name, value in changes.items():
        setattr(target, name, value)
    target.save(update_fields=list(changes))
    limits_changed()
