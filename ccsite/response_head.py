"""A response's head leaves in the same TCP write as its first body bytes.

Twisted's ``Request.write`` sends the status line and headers (``HTTPChannel.writeHeaders``)
and then the body, as two transport writes; with eager writes (``ccsite.twisted_tuning``)
each one is its own ``send`` system call and its own TCP segment, so a small JSON answer
cost two sends where one carries both (the peer's Node server sends one). Here, while
``Request.write`` runs with body bytes to send, the channel holds the head it is given and
joins it to the body's first write. A write that sends no body after all (a HEAD request,
a 204 or 304) sends the head on its own before returning, so a head is never held past the
call that produced it, and a first write without bytes (a stream that starts its headers
early) is not held at all.

The end of a chunked response is joined the same way: inside ``last_write_joined`` (Daphne's
last body message, ``ccsite.daphne_tuning``) the body's last chunk is held and leaves in one
write with the terminator ``Request.finish`` writes after it, not as a send of its own.

Installed only when Twisted still has what it wraps; HTTP/2 streams are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

_plain_write: Any = None  # HTTPChannel.write as Twisted defines it, once installed


def head_bytes(version: bytes, code: bytes, reason: bytes, headers: Any) -> bytes:
    """The status line and header block, as ``HTTPChannel.writeHeaders`` lays them out
    (``headers`` is Twisted's ``Headers``, whose names and values it sanitized when set)."""
    lines = [version, b" ", code, b" ", reason, b"\r\n"]
    for name, values in headers.getAllRawHeaders():
        for value in values:
            lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def _take_head(channel: Any) -> bytes | None:
    head = channel._ccsite_head
    channel._ccsite_head = None
    return head  # type: ignore[no-any-return]


def install(http: Any, headers_class: Any) -> bool:
    """Wrap ``http.Request.write`` and ``http.HTTPChannel``'s header and body writes."""
    channel_class, request_class = http.HTTPChannel, http.Request
    if getattr(channel_class, "_ccsite_joins_head", False):
        return True
    if not all(
        callable(getattr(channel_class, name, None)) for name in ("writeHeaders", "write", "writeSequence")
    ) or not callable(getattr(request_class, "write", None)):
        return False
    write_headers, write, write_sequence = (
        channel_class.writeHeaders,
        channel_class.write,
        channel_class.writeSequence,
    )
    request_write = request_class.write

    def writeHeaders(self: Any, version: bytes, code: bytes, reason: bytes, headers: Any) -> None:
        if self._ccsite_holds_head and isinstance(headers, headers_class):
            self._ccsite_head = head_bytes(version, code, reason, headers)
            return
        write_headers(self, version, code, reason, headers)

    def channel_write(self: Any, data: bytes) -> None:
        head = _take_head(self) if self._ccsite_head is not None else None
        if self._ccsite_last is not None:  # the end of the response: with what was held
            held, self._ccsite_last = self._ccsite_last, None
            data = b"".join([*held, data])
        write(self, data if head is None else head + data)

    def channel_write_sequence(self: Any, iovec: Iterable[bytes]) -> None:
        if self._ccsite_last is not None:
            self._ccsite_last.append(b"".join(iovec))
            return
        if self._ccsite_head is None:
            write_sequence(self, iovec)
            return
        write(self, b"".join([_take_head(self), *iovec]))  # type: ignore[list-item]

    def request_write_joined(self: Any, data: bytes) -> None:
        channel = self.channel
        if self.startedWriting or not data or not isinstance(channel, channel_class):
            request_write(self, data)
            return
        channel._ccsite_holds_head = True
        try:
            request_write(self, data)
        finally:
            channel._ccsite_holds_head = False
            head = _take_head(channel) if channel._ccsite_head is not None else None
            if head is not None and channel.transport is not None:  # no body followed it
                write(channel, head)

    global _plain_write
    _plain_write = write
    replacements = {
        (channel_class, "_ccsite_holds_head"): False,
        (channel_class, "_ccsite_last"): None,
        (channel_class, "_ccsite_head"): None,
        (channel_class, "writeHeaders"): writeHeaders,
        (channel_class, "write"): channel_write,
        (channel_class, "writeSequence"): channel_write_sequence,
        (request_class, "write"): request_write_joined,
        (channel_class, "_ccsite_joins_head"): True,  # last: marks the set complete
    }
    for (owner, name), value in replacements.items():
        setattr(owner, name, value)
    return True


@contextmanager
def last_write_joined(channel: Any) -> Iterator[None]:
    """Inside the block, the channel's chunk writes (``Request.write`` of a chunked body) are
    held and leave with its next plain write, the terminator ``Request.finish`` writes: one
    send for the last chunk and the end of the response. Holding stops there, before
    ``finish`` moves the channel on to a pipelined request (whose answers must follow these
    bytes); what is still held when the block ends (no terminator came) is written then."""
    if _plain_write is None or getattr(channel, "_ccsite_last", False) is not None:
        yield  # not installed, or already joining
        return
    channel._ccsite_last = []
    try:
        yield
    finally:
        held, channel._ccsite_last = channel._ccsite_last, None
        if held and channel.transport is not None:
            _plain_write(channel, b"".join(held))
