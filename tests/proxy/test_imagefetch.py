"""Remote image fetching (CCSITE_IMAGE_FETCH): public addresses only, the checked address is
the one connected to, no redirects, size, type and time capped."""

from __future__ import annotations

import asyncio
import base64

import pytest

from proxy import imagefetch
from proxy.translate.errors import InvalidRequest

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def message_with(url: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image", "image": url, "mimeType": ""}]}]


class ImageServer:
    """A loopback HTTP server with canned answers per path; records the Host headers it saw."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self.routes = {
            "/cat.png": b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n" % len(PNG)
            + PNG,
            "/page": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi",
            "/moved": b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n",
            "/huge": b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\n"
            + b"x" * 5000,
        }

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            path = head.split(" ")[1]
            lines = head.split("\r\n")
            self.hosts += [
                line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("host:")
            ]
            if path == "/slow":
                await reader.read()  # until the client gives up and closes
                return
            writer.write(self.routes.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def server(monkeypatch, settings):
    settings.CCSITE_IMAGE_FETCH_MAX_BYTES = 4096
    settings.CCSITE_IMAGE_FETCH_TIMEOUT = 1.0
    images = ImageServer()
    listener = await asyncio.start_server(images.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]

    async def loopback_is_public_here(host: str, port: int) -> str:
        # The real check refuses loopback (tested below); this server has no other address.
        assert host == "images.example"
        return "127.0.0.1"

    monkeypatch.setattr(imagefetch, "_public_address", loopback_is_public_here)
    async with listener:
        yield images, f"http://images.example:{port}"


async def test_a_public_image_becomes_an_inline_data_url(server):
    images, base = server
    messages = message_with(f"{base}/cat.png")
    await imagefetch.fetch_remote_images(messages)
    part = messages[0]["content"][0]
    assert part["mimeType"] == "image/png"
    assert part["image"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert images.hosts == [base.removeprefix("http://")]  # the original Host, the checked address


@pytest.mark.parametrize(
    ("path", "mentions"),
    [
        ("/page", "image type"),
        ("/moved", "HTTP 302"),
        ("/huge", "larger than"),
        ("/nope", "HTTP 404"),
        ("/slow", "timeout"),
    ],
)
async def test_fetch_failures_are_clear_400s(server, path, mentions):
    _, base = server
    with pytest.raises(InvalidRequest) as raised:
        await imagefetch.fetch_remote_images(message_with(f"{base}{path}"))
    assert raised.value.status == 400 and mentions in raised.value.message


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/x.png", "http://10.0.0.8/x.png", "http://[::1]/x.png", "http://169.254.169.254/"],
)
async def test_private_and_local_addresses_are_never_fetched(url):
    with pytest.raises(InvalidRequest, match="not a public address"):
        await imagefetch.fetch_remote_images(message_with(url))


async def test_messages_without_remote_images_are_left_alone():
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    await imagefetch.fetch_remote_images(messages)
    assert messages == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
