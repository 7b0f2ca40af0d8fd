"""Fetching remote image URLs, when the operator enables it (CCSITE_IMAGE_FETCH).

Command Code takes images inline only (protocol §6), so an ``http(s)`` image URL must be
downloaded by the gateway. That makes the gateway a fetcher for its users, so it only talks
to public addresses: the host is resolved once, every address must be globally routable, and
the connection goes to the checked address (TLS still verifies the original host name), so a
DNS answer cannot change between the check and the fetch. No redirects are followed; the body
is capped in size and time, and must be an image type.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from proxy.translate.errors import InvalidRequest
from proxy.translate.media import IMAGE_TYPES, remote_images
from proxy.translate.wire import ImagePart, WireMessage
from proxy.upstream.outbound import outbound_client_options


def _refuse(message: str) -> InvalidRequest:
    return InvalidRequest(message, param="image_url", code="image_fetch_failed")


async def _public_address(host: str, port: int) -> str:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise _refuse(f"The image host {host!r} could not be resolved.") from None
    addresses = {info[4][0] for info in infos}
    if not addresses or not all(ipaddress.ip_address(address).is_global for address in addresses):
        raise _refuse(f"The image host {host!r} is not a public address; it will not be fetched.")
    return sorted(addresses)[0]


def _pinned_url(url: str) -> tuple[httpx.URL, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse("Image URLs must be http(s) URLs with a host.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return httpx.URL(url), parts.hostname, port


async def _download(url: str) -> tuple[bytes, str]:
    target, host, port = _pinned_url(url)
    address = await _public_address(host, port)
    pinned = target.copy_with(host=address)
    limit, seconds = settings.CCSITE_IMAGE_FETCH_MAX_BYTES, settings.CCSITE_IMAGE_FETCH_TIMEOUT
    options = outbound_client_options(url, timeout=seconds)
    async with httpx.AsyncClient(follow_redirects=False, **options) as client:
        if options["proxy"]:
            # Through the outbound proxy (it resolves the name); the address was checked above.
            request = client.build_request("GET", target)
        else:
            request = client.build_request(
                "GET", pinned, headers={"Host": target.netloc.decode()}, extensions={"sni_hostname": host}
            )
        async with asyncio.timeout(seconds):
            response = await client.send(request, stream=True)
            try:
                return await _checked_body(response, limit), _mime_of(response)
            finally:
                await response.aclose()


async def _checked_body(response: httpx.Response, limit: int) -> bytes:
    if response.status_code != 200:
        raise _refuse(f"Fetching the image failed with HTTP {response.status_code}.")
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > limit:
            raise _refuse(f"The image is larger than {limit} bytes.")
    return bytes(data)


def _mime_of(response: httpx.Response) -> str:
    mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if mime not in IMAGE_TYPES:
        raise _refuse(f"The URL did not return a supported image type (got {mime or 'none'!r}).")
    return mime


async def _fill(part: ImagePart) -> None:
    try:
        data, mime = await _download(part["image"])
    except InvalidRequest:
        raise
    except (httpx.HTTPError, TimeoutError):
        raise _refuse("Fetching the image failed (network error or timeout).") from None
    part["image"] = f"data:{mime};base64,{base64.b64encode(data).decode()}"
    part["mimeType"] = mime


async def fetch_remote_images(messages: list[WireMessage]) -> None:
    """Replace every remote image placeholder with its fetched data URL, concurrently."""
    pending = remote_images(messages)
    if pending:
        await asyncio.gather(*(_fill(part) for part in pending))
