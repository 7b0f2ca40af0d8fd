"""Thinking-block signatures: recognizably ours, bound to the text and the key."""

from __future__ import annotations

import base64

import pytest

from proxy.translate.thinking import PREFIX, sign, verify

KEY = b"test-thinking-key"


def test_signature_is_a_recognizable_ccsite_signature() -> None:
    signature = sign("some reasoning", KEY)
    assert signature.startswith("ccsite1.")
    encoded = signature[len(PREFIX) :]
    assert len(base64.urlsafe_b64decode(encoded + "=")) == 32  # an HMAC-SHA256
    assert set(encoded) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_signature_is_deterministic_and_depends_on_text_and_key() -> None:
    assert sign("a", KEY) == sign("a", KEY)
    assert sign("a", KEY) != sign("b", KEY)
    assert sign("a", KEY) != sign("a", b"other-key")


@pytest.mark.parametrize("text", ["", "plain", "multi\nline\u2028 text", "unicode: 思考 🎉", "x" * 100_000])
def test_round_trip(text: str) -> None:
    assert verify(text, sign(text, KEY), KEY)


def test_tampered_text_is_rejected() -> None:
    signature = sign("Read the file first.", KEY)
    assert not verify("Read the file first!", signature, KEY)
    assert not verify("Read the file first. ", signature, KEY)


def test_other_key_is_rejected() -> None:
    assert not verify("text", sign("text", b"someone-else"), KEY)


def _flip_last_char(signature: str) -> str:
    return signature[:-1] + ("A" if signature[-1] != "A" else "B")


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "ccsite1.",
        "ccsite2." + sign("text", KEY)[len(PREFIX) :],  # another version
        _flip_last_char(sign("text", KEY)),
        sign("text", KEY) + "AA",
        sign("text", KEY)[:-2],
        "ccsite1." + "é" * 43,  # not ASCII
        "ccsite1." + "*" * 43,  # not base64url
        # An Anthropic-style opaque signature is foreign: never verified as ours.
        "EqQBCkgIARABGAIiQL3ElC1JZXhhbXBsZQ",
    ],
)
def test_malformed_or_foreign_signatures_are_rejected(signature: str) -> None:
    assert not verify("text", signature, KEY)


def test_non_string_signature_is_rejected() -> None:
    assert not verify("text", None, KEY)  # type: ignore[arg-type]
