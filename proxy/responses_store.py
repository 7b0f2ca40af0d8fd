"""The gateway's own Responses, kept briefly in process memory for ``previous_response_id``.

Each entry belongs to one client key: a lookup with another key finds nothing, so responses
are never shared across users (or across one user's keys). Entries hold only what the next
turn needs: the parent response id, the request's own input items and the output items. A
chain is resolved by walking parents, so a long conversation costs memory linear in its length.
Entries expire ``CCSITE_RESPONSES_STORE_SECONDS`` after they were last used; past
``CCSITE_RESPONSES_STORE_MAX`` entries, or ``CCSITE_RESPONSES_STORE_MAX_BYTES`` of what they
hold (each entry's ``size``: its request body and output as JSON), the least recently used go
first, and an entry bigger than the byte bound is not kept (its id is then not found): a few
clients sending big inputs cannot make a process keep gigabytes. Multi-process
deployments route a conversation's turns to different processes: there the client must resend
its items (``store: false``, as Codex does), or a shared store is needed (not built yet).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from proxy.translate.errors import InvalidRequest

# A chain longer than this is refused rather than walked (it would be a cycle or an abuse).
MAX_CHAIN = 10_000


@dataclass(slots=True)
class _Entry:
    parent: str | None
    items: list[dict[str, Any]]
    expires_at: float
    size: int


class ResponseStore:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: OrderedDict[tuple[int, str], _Entry] = OrderedDict()
        # A big request is translated (and its chain looked up) in a worker thread while the
        # loop saves other responses: the order of entries is updated under this lock.
        self._lock = threading.Lock()
        self.bytes = 0  # the sum of the kept entries' sizes

    def save(
        self,
        key_id: int,
        response_id: str,
        *,
        parent: str | None,
        items: Sequence[dict[str, Any]],
        size: int = 0,
    ) -> None:
        """Keep ``items`` under ``response_id``; ``size``: about how many bytes they hold."""
        limit, ttl = settings.CCSITE_RESPONSES_STORE_MAX, settings.CCSITE_RESPONSES_STORE_SECONDS
        max_bytes = settings.CCSITE_RESPONSES_STORE_MAX_BYTES
        if limit <= 0 or ttl <= 0 or size > max_bytes:
            return
        entry = _Entry(parent, list(items), self._clock() + ttl, size)
        with self._lock:
            replaced = self._entries.pop((key_id, response_id), None)
            if replaced is not None:
                self.bytes -= replaced.size
            self._entries[(key_id, response_id)] = entry
            self.bytes += size
            while len(self._entries) > limit or self.bytes > max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self.bytes -= dropped.size

    def conversation(self, key_id: int, response_id: str) -> list[dict[str, Any]]:
        """Every item up to and including ``response_id``'s output, oldest first.

        Raises InvalidRequest (400, ``previous_response_not_found``) when this key has no such
        response (never made, expired, or made with another key).
        """
        with self._lock:
            return self._conversation(key_id, response_id)

    def _conversation(self, key_id: int, response_id: str) -> list[dict[str, Any]]:
        now = self._clock()
        ttl = settings.CCSITE_RESPONSES_STORE_SECONDS
        chain: list[_Entry] = []
        current: str | None = response_id
        while current is not None and len(chain) < MAX_CHAIN:
            entry = self._entries.get((key_id, current))
            if entry is None or entry.expires_at < now:
                raise InvalidRequest(
                    f"Previous response with id '{response_id}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
            entry.expires_at = now + ttl
            self._entries.move_to_end((key_id, current))
            chain.append(entry)
            current = entry.parent
        return [item for entry in reversed(chain) for item in entry.items]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0


response_store = ResponseStore()
