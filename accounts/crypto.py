"""Encryption at rest for upstream credentials (Fernet; several keys allow rotation).

CREDENTIAL_ENCRYPTION_KEY holds one or more comma-separated Fernet keys. The first encrypts;
all of them decrypt, so a new key is put first, `rotate_credential_encryption` re-encrypts the
rows, and the old key is then removed.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialDecryptError(Exception):
    """A stored secret cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernet_for(key_setting: str) -> MultiFernet:
    keys = [part.strip() for part in key_setting.split(",") if part.strip()]
    if not keys:
        raise ImproperlyConfigured("CREDENTIAL_ENCRYPTION_KEY is empty")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "CREDENTIAL_ENCRYPTION_KEY must be comma-separated Fernet keys "
            "(32 url-safe base64-encoded bytes each)"
        ) from None


def _fernet() -> MultiFernet:
    return _fernet_for(settings.CREDENTIAL_ENCRYPTION_KEY)


def encrypt_secret(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise CredentialDecryptError("stored credential cannot be decrypted with any key") from None


def reencrypt_secret(token: str) -> str:
    """The same secret under the current first key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise CredentialDecryptError("stored credential cannot be decrypted with any key") from None


def new_encryption_key() -> str:
    return Fernet.generate_key().decode()
