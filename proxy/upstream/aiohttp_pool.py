"""aiohttp's client behind the same interface as proxy/upstream/http1.py, for measurement.

``CC_UPSTREAM_CLIENT=aiohttp`` makes the gateway use it (aiohttp must be installed; it is a
dev/bench dependency, not a runtime one). ``make bench`` runs the relay scenarios again with it
in the same run as our client, which is how the routing issue's decision is taken (see the
http1 module docstring for the figures). Proxies: aiohttp's own (``proxy=``, CONNECT for TLS).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.upstream.http1 import UpstreamConnectionError


class AiohttpResponse:
    def __init__(self, response: Any) -> None:
        self._response = response
        self.status_code = response.status
        self.headers = {name.lower(): value for name, value in response.headers.items()}

    async def read_chunk(self) -> bytes | None:
        import aiohttp

        try:
            data = await self._response.content.readany()
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(f"read failed: {type(exc).__name__}") from None
        return data or None

    async def read(self, limit: int) -> bytes:
        data = bytearray()
        while len(data) < limit:
            chunk = await self.read_chunk()
            if chunk is None:
                break
            data += chunk
        return bytes(data[:limit])

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class AiohttpPool:
    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        max_connections: int,
        max_idle: int,
        proxy: str | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._connect_timeout = connect_timeout
        self._limit = max_connections
        self._proxy = proxy
        self._session: Any = None
        self.closed = False

    def _client(self) -> Any:
        import aiohttp

        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=30)
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=timeout, auto_decompress=True, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def request(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> AiohttpResponse:
        import aiohttp

        try:
            response = await self._client().request(
                method, self._base_url + path, headers=dict(headers), data=body, proxy=self._proxy
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamConnectionError(f"connect failed: {type(exc).__name__}") from None
        return AiohttpResponse(response)

    async def aclose(self) -> None:
        self.closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()
