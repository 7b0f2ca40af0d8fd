from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from accounts import crypto
from accounts.models import UpstreamCredential
from accounts.services import AccountsError, CredentialOptions, credential_add, credentials_reencrypt
from tests.factories import make_credential

pytestmark = pytest.mark.django_db

SECRET = "user_live_0123456789abcdefWXYZ"


def _fresh_cipher_cache():
    crypto._fernet_for.cache_clear()


def test_secret_is_encrypted_at_rest_and_round_trips():
    credential = make_credential(api_key=SECRET)
    row = UpstreamCredential.objects.get(pk=credential.pk)
    assert SECRET not in row.secret_encrypted
    assert crypto.decrypt_secret(row.secret_encrypted) == SECRET
    assert row.secret_last4 == "WXYZ"


def test_rotation_with_two_keys(settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CREDENTIAL_ENCRYPTION_KEY = old_key
    credential = make_credential(api_key=SECRET)
    token_under_old = UpstreamCredential.objects.get(pk=credential.pk).secret_encrypted

    # Step 1: the new key goes first; the old one still decrypts.
    settings.CREDENTIAL_ENCRYPTION_KEY = f"{new_key},{old_key}"
    assert crypto.decrypt_secret(token_under_old) == SECRET
    assert credentials_reencrypt() == 1

    # Step 2: the old key is removed; the re-encrypted secret still decrypts.
    settings.CREDENTIAL_ENCRYPTION_KEY = new_key
    token_under_new = UpstreamCredential.objects.get(pk=credential.pk).secret_encrypted
    assert crypto.decrypt_secret(token_under_new) == SECRET
    with pytest.raises(crypto.CredentialDecryptError):
        crypto.decrypt_secret(token_under_old)


def test_malformed_encryption_key_is_a_configuration_error(settings):
    settings.CREDENTIAL_ENCRYPTION_KEY = "not-a-fernet-key"
    with pytest.raises(ImproperlyConfigured, match="Fernet"):
        crypto.encrypt_secret("x")


def test_repr_and_str_never_show_the_secret():
    credential = make_credential(api_key=SECRET)
    for text in (repr(credential), str(credential)):
        assert SECRET not in text
        assert credential.secret_encrypted not in text
        assert "WXYZ" in text


@pytest.mark.parametrize("api_key", ["", "   ", "has space inside", "short"])
def test_unusable_api_keys_are_refused(api_key):
    with pytest.raises(AccountsError):
        credential_add(label="x", api_key=api_key)


def test_duplicate_label_is_refused():
    make_credential(label="main")
    with pytest.raises(AccountsError, match="already exists"):
        make_credential(label="main")


def test_options_are_stored():
    credential = credential_add(
        label="tuned",
        api_key=SECRET,
        options=CredentialOptions(
            weight=3, enabled=False, allowed_models=("zai-org/GLM-5.3",), max_concurrent=4
        ),
    )
    row = UpstreamCredential.objects.get(pk=credential.pk)
    assert (row.weight, row.enabled, row.allowed_models, row.max_concurrent) == (
        3,
        False,
        ["zai-org/GLM-5.3"],
        4,
    )
