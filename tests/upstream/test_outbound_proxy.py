"""Outbound HTTP(S) proxies: the upstream client, billing and catalog calls go through HTTPS_PROXY /
HTTP_PROXY / CC_UPSTREAM_PROXY (CONNECT for TLS) and bypass it for NO_PROXY hosts (the webhook too)."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import threading
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from proxy.translate.wire import UpstreamRequest
from proxy.upstream.client import close_upstream_client
from proxy.upstream.commandcode import Credential, open_stream
from proxy.upstream.http1 import ConnectionPool, UpstreamConnectionError
from proxy.upstream.outbound import proxy_for
from proxy.upstream.simulator.scenarios import expected_text
from tests.outbound_proxy import LoopbackProxy
from tests.upstream.test_client import RecordingChooser, streamed_text

MODEL = "deepseek/deepseek-v4-flash"


@pytest.fixture
def clean_env(monkeypatch, settings):
    for name in (
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "NO_PROXY",
        "https_proxy",
        "http_proxy",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    settings.CC_UPSTREAM_PROXY = ""
    return monkeypatch


def test_proxy_rule_follows_the_environment_and_no_proxy(clean_env, settings):
    clean_env.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    clean_env.setenv("HTTP_PROXY", "http://plain.internal:8080")
    clean_env.setenv("NO_PROXY", "localhost,.corp.example")
    assert proxy_for("https://api.commandcode.ai") == "http://proxy.internal:3128"
    assert proxy_for("http://api.commandcode.ai") == "http://plain.internal:8080"
    assert proxy_for("https://billing.corp.example") is None
    assert proxy_for("http://localhost:9100") is None
    settings.CC_UPSTREAM_PROXY = "http://explicit:1"
    assert proxy_for("https://api.commandcode.ai") == "http://explicit:1"
    assert proxy_for("https://x.corp.example") is None  # NO_PROXY still wins


def request_for() -> UpstreamRequest:
    return UpstreamRequest(
        model=MODEL, system="", messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    )


@pytest.mark.parametrize("via", ["HTTP_PROXY", "CC_UPSTREAM_PROXY"])
async def test_the_upstream_is_reached_through_the_proxy(simulator, clean_env, settings, via):
    settings.CC_UPSTREAM_BASE_URL = simulator.url
    with LoopbackProxy() as proxy:
        if via == "HTTP_PROXY":
            clean_env.setenv("HTTP_PROXY", proxy.url)
        else:
            settings.CC_UPSTREAM_PROXY = proxy.url
        await close_upstream_client()
        chooser = RecordingChooser([Credential(1, "main", f"user_px_{uuid.uuid4().hex[:12]}")])
        try:
            assert await streamed_text(await open_stream(request_for(), chooser=chooser)) == expected_text()
        finally:
            await close_upstream_client()
        assert f"POST {simulator.url}/alpha/generate" in proxy.seen


async def test_no_proxy_hosts_bypass_it(simulator, clean_env, settings):
    settings.CC_UPSTREAM_BASE_URL = simulator.url
    with LoopbackProxy() as proxy:
        clean_env.setenv("HTTP_PROXY", proxy.url)
        clean_env.setenv("NO_PROXY", "127.0.0.1")
        await close_upstream_client()
        chooser = RecordingChooser([Credential(1, "main", f"user_px_{uuid.uuid4().hex[:12]}")])
        try:
            assert await streamed_text(await open_stream(request_for(), chooser=chooser)) == expected_text()
        finally:
            await close_upstream_client()
        assert proxy.seen == []


def _self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture
async def tls_origin(tmp_path):
    """An HTTPS origin on loopback answering every request with a small chunked body."""
    cert, key = _self_signed()
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nsecret hello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    yield server.sockets[0].getsockname()[1], client_ctx
    server.close()
    await server.wait_closed()


async def test_https_goes_through_a_connect_tunnel_with_tls_end_to_end(tls_origin):
    port, client_ctx = tls_origin
    with LoopbackProxy(require_auth="Basic dXNlcjpwYXNz") as proxy:  # user:pass
        proxy_url = f"http://user:pass@127.0.0.1:{proxy.port}"
        pool = ConnectionPool(
            f"https://localhost:{port}",
            connect_timeout=5,
            max_connections=4,
            max_idle=4,
            proxy=proxy_url,
            ssl_context=client_ctx,
        )
        try:
            response = await pool.request("GET", "/alpha/whoami", {}, b"")
            assert response.status_code == 200
            assert await response.read(1024) == b"secret hello"
        finally:
            await pool.aclose()
        assert proxy.seen == [f"CONNECT localhost:{port}"]  # the proxy saw only the tunnel


async def test_a_proxy_that_refuses_connect_is_a_connection_error(tls_origin):
    port, client_ctx = tls_origin
    with LoopbackProxy(require_auth="Basic other") as proxy:
        pool = ConnectionPool(
            f"https://localhost:{port}",
            connect_timeout=5,
            max_connections=4,
            max_idle=4,
            proxy=proxy.url,
            ssl_context=client_ctx,
        )
        try:
            with pytest.raises(UpstreamConnectionError, match="proxy refused CONNECT: 407"):
                await pool.request("GET", "/", {}, b"")
        finally:
            await pool.aclose()


@pytest.mark.django_db(transaction=True)
async def test_billing_and_catalog_calls_go_through_the_proxy_and_the_webhook_follows_no_proxy(
    simulator, clean_env, settings
):
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from asgiref.sync import sync_to_async

    from catalog.refresh import fetch_live_list
    from proxy import billing
    from tests.factories import make_credential

    received: list[bytes] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            return None

    hook = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    settings.CC_UPSTREAM_BASE_URL = simulator.url  # http://127.0.0.1:port: through the proxy
    settings.CCSITE_LOW_BALANCE_WEBHOOK_URL = f"http://localhost:{hook.server_port}/hook"
    settings.CCSITE_LOW_BALANCE_THRESHOLD = 1000.0  # any balance is low: the hook fires
    clean_env.setenv("NO_PROXY", "localhost")  # the webhook's receiver is internal
    try:
        with LoopbackProxy() as proxy:
            settings.CC_UPSTREAM_PROXY = proxy.url
            await sync_to_async(make_credential)(label="px", api_key=f"user_px_{uuid.uuid4().hex[:12]}")
            assert await billing.refresh_billing() == {"px": ""}
            assert await sync_to_async(fetch_live_list)()
            seen = list(proxy.seen)
    finally:
        hook.shutdown()
        hook.server_close()
    for path in ("/alpha/whoami", "/alpha/billing/credits", "/provider/v1/models"):
        assert f"GET {simulator.url}{path}" in seen
    assert len(received) == 1  # delivered directly
    assert not any("/hook" in line for line in seen)
