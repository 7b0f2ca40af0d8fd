from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and credentials"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.keycache import key_cache
        from accounts.services import KEYS_CHANGED
        from ccsite import invalidation

        # A limit changed or a key was revoked in some process: drop every cached key here.
        invalidation.on_change(KEYS_CHANGED, key_cache.clear)
