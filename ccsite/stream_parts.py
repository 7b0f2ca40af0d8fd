"""Marking the last part of a streamed response body (the relay's closing events)."""

from __future__ import annotations


class FinalPart(bytes):
    """The last bytes a streamed body's iterator yields. The API handler holds them until the
    iterator has ended (its clean-up has run) and sends them as the response's last body
    message: the last events and the end of the response leave together, where a body
    message and then an empty one cost two writes to the client. To any other reader it is
    plain ``bytes``."""

    __slots__ = ()
