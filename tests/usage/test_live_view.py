"""The live request view's WebSocket: refuses anonymous and non-staff users, delivers new rows to
staff as the writer writes them."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from accounts.keycache import KeyPrincipal
from ccsite.asgi import application
from proxy.outcomes import RequestOutcome
from proxy.translate.events import Usage
from tests.factories import UserFactory
from usage.consumers import FORBIDDEN
from usage.recorder import RequestLogWriter

PATH = "/ws/usage/live/"


def session_headers(user) -> list[tuple[bytes, bytes]]:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if user is None:
        return headers
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return [*headers, (b"cookie", cookie.encode())]


async def connect(user):
    headers = await sync_to_async(session_headers)(user)
    communicator = WebsocketCommunicator(application, PATH, headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", ["anonymous", "member"])
async def test_the_socket_refuses_anyone_but_staff(who):
    user = None if who == "anonymous" else await sync_to_async(UserFactory)()
    communicator, connected, code = await connect(user)
    assert not connected and code == FORBIDDEN
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_staff_receive_each_new_row():
    staff = await sync_to_async(UserFactory)(is_staff=True, username="ops")
    member = await sync_to_async(UserFactory)(username="alice")
    communicator, connected, _ = await connect(staff)
    assert connected
    outcome = RequestOutcome(
        "openai-chat",
        KeyPrincipal(key_id=1, key_name="k", user_id=member.pk, username="alice"),
        "m",
        "m",
        True,
    )
    outcome.request_id, outcome.status, outcome.http_status = "req_live0001", "ok", 200
    outcome.usage, outcome.first_token_ms = Usage(input_tokens=40, output_tokens=7), 12.5
    writer = RequestLogWriter()
    writer.record(outcome)  # from this event loop, as a finished response does
    assert await sync_to_async(writer.flush, thread_sensitive=False)()
    message = await communicator.receive_json_from(timeout=5)
    [row] = message["rows"]
    assert row["request_id"] == "req_live0001" and row["user"] == "alice"
    assert (row["outcome"], row["input_tokens"], row["output_tokens"], row["first_token_ms"]) == (
        "ok",
        40,
        7,
        12.5,
    )
    assert "duration_ms" in row and "time" in row and row["model"] == "m"
    await communicator.disconnect()
