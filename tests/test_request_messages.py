"""An HTTP request's messages under Daphne (ccsite/request_messages.py), and the API handler
watching them for the client's disconnect without a task of its own (ccsite/handler.py)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from ccsite.request_messages import RequestMessages
from tests.asgi_calls import http_scope
from tests.factories import make_client_key

BODY = {"type": "http.request", "body": b"{}", "more_body": False}
DISCONNECT = {"type": "http.disconnect"}


async def test_messages_come_out_in_order_and_a_reader_waits_for_the_next():
    messages = RequestMessages()
    messages.put_nowait(BODY)
    assert await messages.get() == BODY and messages.empty()
    waiting = asyncio.ensure_future(messages.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    messages.put_nowait(DISCONNECT)
    assert await waiting == DISCONNECT


async def test_a_cancelled_reader_loses_no_message():
    messages = RequestMessages()
    first, second = asyncio.ensure_future(messages.get()), asyncio.ensure_future(messages.get())
    await asyncio.sleep(0)
    messages.put_nowait(BODY)  # wakes the first reader, which is cancelled before it runs
    first.cancel()
    assert await second == BODY
    assert first.cancelled()


async def test_the_disconnect_is_called_back_when_put_or_at_once_if_it_was():
    messages, calls = RequestMessages(), []
    messages.on_disconnect(lambda: calls.append("watching"))
    messages.put_nowait(BODY)
    assert calls == []
    messages.put_nowait(DISCONNECT)
    assert calls == ["watching"] and messages.disconnected
    messages.on_disconnect(None)
    messages.put_nowait(DISCONNECT)
    assert calls == ["watching"]
    messages.on_disconnect(lambda: calls.append("late"))
    assert calls == ["watching", "late"]


async def _serve_under_daphne(path: str, messages: RequestMessages, headers=()) -> list[dict]:
    """The gateway's ASGI application called as Daphne calls it (ccsite/daphne_tuning.py)."""
    from ccsite.asgi import application

    messages.put_nowait(BODY)
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = http_scope("GET", path, headers=headers)
    await application(scope, messages.get, send)
    return sent


@pytest.mark.django_db(transaction=True)
async def test_no_task_listens_for_the_disconnect_of_an_api_request(monkeypatch):
    from proxy import auth

    _, secret = await sync_to_async(make_client_key)()
    headers = [(b"authorization", f"Bearer {secret}".encode())]
    await _serve_under_daphne("/v1/models", RequestMessages(), headers)  # starts the process's own tasks
    tasks_in_view: list[int] = []
    presented = auth.presented_key

    def counting(request):
        tasks_in_view.append(len(asyncio.all_tasks()))
        return presented(request)

    monkeypatch.setattr(auth, "presented_key", counting)
    before = len(asyncio.all_tasks())
    sent = await _serve_under_daphne("/v1/models", RequestMessages(), headers)
    assert sent[0]["status"] == 200
    assert tasks_in_view == [before]  # served in the caller's task; no listener was started


class _Match:
    """What resolve_api_path returns, for one view."""

    def __init__(self, func):
        self.func, self.args, self.kwargs = func, (), {}


@pytest.mark.django_db(transaction=True)
async def test_a_disconnect_while_the_view_waits_cancels_it(monkeypatch):
    from ccsite import handler

    messages, cancelled = RequestMessages(), []

    async def waiting_view(request, *args, **kwargs):  # as a view waiting on the upstream
        messages.put_nowait(DISCONNECT)  # the client leaves meanwhile
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    monkeypatch.setattr(handler, "resolve_api_path", lambda path: _Match(waiting_view))
    sent = await asyncio.wait_for(_serve_under_daphne("/v1/anything", messages), 3)
    assert cancelled == [True]
    assert sent == []  # nothing is sent to a client that has gone


@pytest.mark.django_db(transaction=True)
async def test_the_disconnect_put_when_the_response_ends_cancels_nothing(monkeypatch):
    from django.http import HttpResponse

    from ccsite import handler

    messages = RequestMessages()
    sent: list[dict] = []

    async def answering_view(request, *args, **kwargs):
        return HttpResponse(b"ok")

    async def send_then_disconnect(message: dict) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            messages.put_nowait(DISCONNECT)  # as Daphne does inside its last send

    monkeypatch.setattr(handler, "resolve_api_path", lambda path: _Match(answering_view))
    from ccsite.asgi import application

    messages.put_nowait(BODY)
    await application(http_scope("GET", "/v1/x"), messages.get, send_then_disconnect)
    assert sent[0]["status"] == 200 and sent[-1]["body"] == b"ok"
    # A cancel left scheduled by the disconnect would land on this task at its next turns.
    current = asyncio.current_task()
    for _ in range(3):
        await asyncio.sleep(0)
    assert current is not None and not current.cancelling()
