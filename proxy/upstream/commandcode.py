"""The Command Code upstream client: the one door to ``POST /alpha/generate`` (protocol §3-§10).

``open_stream`` sends the translated request as the CLI would, retries what may be retried,
and returns once the HTTP status of the client's response can be decided: the upstream
accepted and showed something, ended, or stayed quiet for CC_STATUS_PEEK_SECONDS. A failure
before that raises ``UpstreamError``, which the surfaces render as a real 4xx/5xx.
"""

from __future__ import annotations

import asyncio

from ccsite.settings_cache import cached_settings, from_settings
from proxy.translate.wire import UpstreamRequest
from proxy.upstream.client import upstream_pool
from proxy.upstream.credentials import Credential, CredentialChooser
from proxy.upstream.stream import StreamLimits, UpstreamStream
from proxy.upstream.version import refresh_in_background
from proxy.upstream.wire_headers import envelope, thread_id

__all__ = ["Credential", "CredentialChooser", "UpstreamStream", "open_stream", "stream_limits"]


@from_settings
def stream_limits() -> StreamLimits:
    return StreamLimits(
        first_event=cached_settings.CC_FIRST_EVENT_TIMEOUT,
        idle=cached_settings.CC_IDLE_TIMEOUT,
        total=cached_settings.CC_TOTAL_TIMEOUT,
        max_retries=cached_settings.CC_MAX_RETRIES,
        retry_base_delay=cached_settings.CC_RETRY_BASE_DELAY,
        retry_max_delay=cached_settings.CC_RETRY_MAX_DELAY,
        max_line_bytes=cached_settings.CC_MAX_LINE_BYTES,
    )


async def open_stream(request: UpstreamRequest, *, chooser: CredentialChooser) -> UpstreamStream:
    refresh_in_background()
    session_id = thread_id(request.session_hint, request.session_scope)
    body = envelope(request, session_id)
    stream = UpstreamStream(
        upstream_pool(), body, session_id, chooser, stream_limits(), hand_over_first_token=request.stream
    )
    stream.start()
    try:
        await stream.wait_opened(cached_settings.CC_STATUS_PEEK_SECONDS)
    except BaseException:
        # Failed, or the client went away while we waited: nothing may keep running.
        await asyncio.shield(stream.aclose())
        raise
    return stream
