"""Re-encrypt every upstream credential under the first key of CREDENTIAL_ENCRYPTION_KEY."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from accounts.crypto import CredentialDecryptError
from accounts.management.base import OneLineCommand
from accounts.services import credentials_reencrypt


class Command(OneLineCommand):
    help = "Re-encrypt stored credentials with the newest key (put it first in the setting)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = credentials_reencrypt()
        except CredentialDecryptError as exc:
            raise CommandError(f"{exc}; is the old key still listed?") from None
        self.stdout.write(f"Re-encrypted {count} credential(s).")
