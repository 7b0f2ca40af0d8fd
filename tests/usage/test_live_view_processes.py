"""The live request view across processes: with REDIS_URL (channels-redis), a staff browser's
socket on one gateway process receives the rows another process served and wrote; anyone else
is refused by the real server too."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import websocket
from django.conf import settings
from django.test import Client

from tests.factories import UserFactory, make_client_key, make_credential
from tests.live import LiveProcess, daphne_process, free_port

pytestmark = [pytest.mark.live]

MODEL = "deepseek/deepseek-v4-flash"


@pytest.fixture(scope="module")
def two_gateways(
    redis_server, simulator, django_db_setup, django_db_blocker
) -> Iterator[tuple[LiveProcess, ...]]:
    env = {
        "CC_UPSTREAM_BASE_URL": simulator.url,
        "REDIS_URL": redis_server.url,
        "CCSITE_REQUEST_LOG_BACKGROUND": "1",
        "CCSITE_REQUEST_LOG_FLUSH_SECONDS": "0.05",
    }
    with (
        daphne_process(port=free_port(), env=env) as watched,
        daphne_process(port=free_port(), env=env) as serving,
    ):
        yield watched, serving


def open_socket(gateway: LiveProcess, user) -> websocket.WebSocket:
    cookie = ""
    if user is not None:
        client = Client()
        client.force_login(user)
        cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    url = gateway.url.replace("http://", "ws://") + "/ws/usage/live/"
    return websocket.create_connection(url, timeout=10, cookie=cookie or None, origin=gateway.url)


def test_a_row_served_by_one_process_reaches_staff_watching_another(two_gateways, transactional_db):
    watched, serving = two_gateways
    make_credential(label="live-processes", api_key="user_liveproc_0000abcd")
    key_row, key = make_client_key()
    staff = UserFactory(is_staff=True, username="ops-live")
    for who in (None, UserFactory(username="not-staff")):
        # Closed before it was accepted: the server answers the handshake with a 403.
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            open_socket(watched, who)
        assert refused.value.status_code == 403
    socket = open_socket(watched, staff)
    try:
        response = httpx.post(
            f"{serving.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
            timeout=20,
        )
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        seen = []
        while request_id not in seen:
            message = json.loads(socket.recv())
            seen += [row["request_id"] for row in message["rows"]]
        [row] = [row for row in message["rows"] if row["request_id"] == request_id]
        assert (row["user"], row["outcome"], row["model"]) == (key_row.user.username, "ok", MODEL)
        assert key not in json.dumps(message)
    finally:
        socket.close()
