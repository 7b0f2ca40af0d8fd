"""Client key digests: HMAC-SHA256 keyed with the pepper (accounts/keys.py)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from accounts import keys


@pytest.mark.parametrize("pepper", ["pepper-one", "pepper-two", "ünïcode-pepper"])
def test_a_digest_is_the_hmac_of_the_key_under_the_pepper(pepper):
    for key in (keys.generate_key(), keys.generate_key(), "ccs_" + "a" * 44):
        expected = hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()
        assert keys.key_digest(key, pepper) == expected  # the same digest, however often asked
        assert keys.key_digest(key, pepper) == expected
        assert keys.key_matches(key, expected, pepper)
        assert not keys.key_matches(key, expected, pepper + "x")
