"""The Content-Type shortcut installed into Twisted answers exactly as the email parser did."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from ccsite import twisted_tuning

VALUES = [
    b"application/json",
    b"Application/JSON; charset=utf-8",
    b"application/json, application/json",
    b"multipart/form-data; boundary=----x",
    b" application/x-www-form-urlencoded ",
    b"text",
    b"",
    b"a/b/c",
    b"/json",
    b"json/",
]


@pytest.mark.parametrize("value", VALUES)
def test_same_answer_as_the_email_parser(value):
    message = EmailMessage()
    message["content-type"] = value.decode("charmap")
    assert twisted_tuning.content_type_of(value) == message.get_content_type().encode("charmap")


def test_it_is_installed_into_twisted():
    from twisted.web import http

    assert twisted_tuning.install() is True
    assert http._parseContentType is twisted_tuning.content_type_of
