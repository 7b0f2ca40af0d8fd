"""One upstream generation: attempts, retries, deadlines, and the events read so far.

A reader task owns the HTTP response. It retries failures that are retryable while nothing
visible has been produced (protocol §10: never after visible output), enforces the
first-event, idle and total deadlines, parses NDJSON into typed events and queues them. The
response side takes the queue in batches: events that arrived together are translated and
written downstream together, and a quiet upstream yields an empty batch every ``tick`` so
the surface can send a keep-alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from proxy.translate.events import (
    VISIBLE_EVENTS,
    Abort,
    ErrorEvent,
    Finish,
    UpstreamEvent,
    Usage,
    parse_event,
)
from proxy.translate.failures import (
    CREDENTIAL_KINDS,
    FailureKind,
    UpstreamFailure,
    classify_http_error,
    network_failure,
    timeout_failure,
    truncated_stream_failure,
)
from proxy.upstream.credentials import Credential, CredentialChooser
from proxy.upstream.errors import UpstreamError
from proxy.upstream.http1 import ConnectionPool, Response, UpstreamConnectionError
from proxy.upstream.ndjson import LineTooLong, NdjsonDecoder, decoded, decoded_lazily
from proxy.upstream.wire_headers import GENERATE_PATH, generate_headers

logger = logging.getLogger(__name__)

ERROR_BODY_LIMIT = 64 * 1024
# A slow client makes the reader wait once this many events are queued (bounded memory).
HIGH_WATER_EVENTS = 4096
NO_CREDENTIAL_FAILURE = UpstreamFailure(
    FailureKind.FAILED, 0, "no_upstream_credential", "No usable upstream credential is available."
)


# A hard stop on attempts of one request, whatever the chooser says.
MAX_ATTEMPTS_PER_REQUEST = 8


def _may_try_again(failure: UpstreamFailure) -> bool:
    """Before visible output: retry transient failures, fail over on the key's own failures."""
    return failure.retryable or failure.kind in CREDENTIAL_KINDS


@dataclass(frozen=True, slots=True)
class StreamLimits:
    first_event: float
    idle: float
    total: float
    max_retries: int
    retry_base_delay: float
    retry_max_delay: float
    max_line_bytes: int

    def backoff(self, retry: int, failure: UpstreamFailure) -> float:
        """Capped exponential backoff; a short Retry-After from the service wins."""
        delay = min(self.retry_max_delay, self.retry_base_delay * 2 ** (retry - 1))
        if failure.retry_after is not None and failure.retry_after <= self.retry_max_delay:
            delay = max(delay, failure.retry_after)
        return delay


class _Timeout(Exception):
    def __init__(self, failure: UpstreamFailure) -> None:
        self.failure = failure


def _line_too_long(exc: LineTooLong) -> UpstreamFailure:
    return UpstreamFailure(FailureKind.FAILED, 0, "line_too_long", f"Command Code sent {exc}.")


class UpstreamStream:
    """Created by ``open_stream``; the relay reads ``batches`` and always calls ``aclose``."""

    def __init__(
        self,
        client: ConnectionPool,
        body: bytes,
        session_id: str,
        chooser: CredentialChooser,
        limits: StreamLimits,
        *,
        hand_over_first_token: bool = False,
    ) -> None:
        """``hand_over_first_token``: the response streams, so its first token is worth a turn
        of the loop to send before the rest of its chunk is parsed (a whole reply is not)."""
        self._client = client
        self._hand_over_first_token = hand_over_first_token
        self._body = body
        self._session_id = session_id
        self._chooser = chooser
        self._limits = limits
        self._loop = asyncio.get_running_loop()
        self._deadline = self._loop.time() + limits.total
        self._events: list[UpstreamEvent] = []
        self._wakeup = asyncio.Event()
        self._quiet_since = 0.0  # loop time the consumer last got a batch (keep-alive ticks)
        self._tick_due = False
        self._ticker: asyncio.TimerHandle | None = None
        self._drained = asyncio.Event()
        self._settled = asyncio.Event()  # a 200 arrived, or the stream ended
        self._decided = asyncio.Event()  # something visible arrived, or the stream ended
        self._reader: asyncio.Task[None] | None = None
        # The current read's deadline (loop time) and what the timeout failure says about it.
        self._due = 0.0
        self._due_label: tuple[str, float] = ("waiting for the first event", limits.first_event)
        self._alarm: asyncio.TimerHandle | None = None  # the read's watchdog timer
        self._alarm_task: asyncio.Task[None] | None = None
        self._alarm_fired = False
        self.failure: UpstreamFailure | None = None
        self.ended = False
        self.accepted = False
        self.visible = False
        self.finished = False
        self.usage: Usage | None = None
        self.attempts = 0
        self.credential: Credential | None = None

    @property
    def ready(self) -> bool:
        """Events (or the end) are waiting to be read right now."""
        return bool(self._events) or self.ended

    def start(self) -> None:
        self._reader = self._loop.create_task(self._run())

    async def wait_opened(self, peek: float) -> None:
        """Return once the upstream accepted (HTTP 200) and either showed something, ended, or
        stayed quiet for ``peek`` seconds. Raise UpstreamError if it failed before anything was
        visible, so the surface can answer with a real HTTP status."""
        await self._settled.wait()
        # Usually the first events came with the response head: then no peek timer is made.
        while not self.ended and peek > 0 and not self._decided.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(peek):
                    await self._decided.wait()
            if self._decided.is_set() or self._settled.is_set():
                break  # something showed, or a healthy upstream stayed quiet: commit
            # The attempt failed and a retry is under way: the status waits for its 200.
            await self._settled.wait()
        if self.failure is not None and not self.visible:
            raise UpstreamError(self.failure)

    async def batches(self, tick: float | None) -> AsyncIterator[list[UpstreamEvent]]:
        """Lists of events as they arrive; ``[]`` after ``tick`` quiet seconds (never with
        ``tick=None``: a reader that sends no keep-alives). Raises UpstreamError after the
        last event when the stream failed."""
        # One timer per stream, re-armed once per tick, instead of a timeout per wait: a fast
        # stream waits once every few events, and each timeout is a timer scheduled and undone.
        # It is set at the first wait, not before the first batch: the events that came with
        # the response head go out without waiting for a timer to be made.
        loop = self._loop
        self._quiet_since = loop.time()
        try:
            while True:
                if self._events:
                    batch, self._events = self._events, []
                    self._drained.set()
                    self._quiet_since, self._tick_due = loop.time(), False
                    yield batch
                    continue
                if self.ended:
                    if self.failure is not None:
                        raise UpstreamError(self.failure)
                    return
                if self._tick_due:
                    self._tick_due = False
                    self._quiet_since = loop.time()
                    yield []
                    continue
                if tick is not None and self._ticker is None:
                    self._ticker = loop.call_at(self._quiet_since + tick, self._on_tick, tick)
                self._wakeup.clear()
                await self._wakeup.wait()
        finally:
            if self._ticker is not None:
                self._ticker.cancel()
                self._ticker = None

    def _on_tick(self, tick: float) -> None:
        """Wake the consumer if nothing went out for ``tick`` seconds; check again later."""
        due = self._quiet_since + tick
        if self._loop.time() >= due:
            self._tick_due = True
            self._wakeup.set()
            due = self._loop.time() + tick
        self._ticker = self._loop.call_at(due, self._on_tick, tick)

    async def aclose(self) -> None:
        """Stop reading and close the upstream connection at once (idempotent)."""
        reader = self._reader
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    # The reader task.

    async def _run(self) -> None:
        try:
            self.failure = await self._attempt_until_done()
        except Exception:  # a bug must end the stream cleanly, never hang the client
            logger.exception("upstream reader failed")
            self.failure = network_failure("internal error while reading the stream")
        finally:
            self._chooser.finish()  # routing releases the key's concurrency slot
            self.ended = True
            for event in (self._wakeup, self._settled, self._decided):
                event.set()

    async def _attempt_until_done(self) -> UpstreamFailure | None:
        failed: Credential | None = None
        failure: UpstreamFailure | None = None
        retries = 0
        # Same-key retries are bounded by max_retries, failovers by the chooser.
        for _ in range(self._limits.max_retries + MAX_ATTEMPTS_PER_REQUEST):
            credential = await self._chooser.choose(failed, failure)
            if credential is None:
                return failure or NO_CREDENTIAL_FAILURE
            if failure is not None and credential == failed:
                if not failure.retryable or retries >= self._limits.max_retries:
                    return failure
                retries += 1
                await asyncio.sleep(self._limits.backoff(retries, failure))
            self.credential, self.attempts = credential, self.attempts + 1
            failure = await self._attempt(credential)
            await self._chooser.report(credential, failure)
            if failure is None or self.visible or not _may_try_again(failure):
                return failure
            if self._loop.time() >= self._deadline:
                return failure
            failed = credential
            # Not settled while retrying a failed upstream: wait_opened keeps the status open.
            self._settled.clear()
            logger.info("upstream attempt %d failed with %s", self.attempts, failure.code)
        return failure

    async def _attempt(self, credential: Credential) -> UpstreamFailure | None:
        headers = generate_headers(credential.api_key, self._session_id)
        try:
            sending = self._client.request("POST", GENERATE_PATH, headers, self._body)
            response = await self._within(self._limits.first_event, "waiting for a response", sending)
        except _Timeout as exc:
            return exc.failure
        except UpstreamConnectionError as exc:
            return network_failure(str(exc))
        try:
            if response.status_code != 200:
                return await self._error_response(response)
            self.accepted = True
            self._settled.set()
            return await self._read(response)
        except _Timeout as exc:
            return exc.failure if not self.finished else None
        except UpstreamConnectionError as exc:
            return network_failure(f"{exc} while reading the stream")
        except LineTooLong as exc:
            return _line_too_long(exc)
        finally:
            await response.aclose()

    async def _within(self, seconds: float, what: str, awaitable: Any) -> Any:
        limit, label = self._limit(seconds, what)
        try:
            async with asyncio.timeout_at(limit):
                return await awaitable
        except TimeoutError:
            raise _Timeout(timeout_failure(*label)) from None

    def _limit(self, seconds: float, what: str) -> tuple[float, tuple[str, float]]:
        """The sooner of a per-step deadline and the request's total deadline."""
        step = self._loop.time() + seconds
        if step <= self._deadline:
            return step, (what, seconds)
        return self._deadline, ("the whole response", self._limits.total)

    async def _error_response(self, response: Response) -> UpstreamFailure:
        reading = response.read(ERROR_BODY_LIMIT)
        body = await self._within(self._limits.first_event, "reading an error", reading)
        return classify_http_error(
            response.status_code, body, retry_after=response.headers.get("retry-after")
        )

    async def _read(self, response: Response) -> UpstreamFailure | None:
        decoder = NdjsonDecoder(self._limits.max_line_bytes)
        self._arm(self._limits.first_event, "waiting for the first event")
        with self._watchdog() as expired:
            try:
                while True:
                    chunk = await response.read_chunk()
                    if chunk is None:
                        break
                    lines = decoder.lines(chunk)
                    # Until a streamed reply's first token is out, lines are parsed one by one.
                    first_pending = self._hand_over_first_token and not self.visible
                    failure = await self._push(
                        decoded_lazily(lines) if first_pending else decoded(lines), waiting=True
                    )
                    if failure is not None:
                        return failure
                    self._arm(self._limits.idle, "waiting between events")
            except asyncio.CancelledError:
                if expired():
                    raise _Timeout(timeout_failure(*self._due_label)) from None
                raise
        failure = await self._push(decoder.close(), waiting=False)
        if failure is not None:
            return failure
        return None if self.finished else truncated_stream_failure()

    def _arm(self, seconds: float, what: str) -> None:
        """Move the read deadline. Timer work only when it comes sooner than the watchdog is
        set for (the first event's deadline giving way to a shorter idle one); a later one
        is read by the watchdog when it fires."""
        due = self._loop.time() + seconds
        if due <= self._deadline:
            self._due, self._due_label = due, (what, seconds)
        else:
            self._due, self._due_label = self._deadline, ("the whole response", self._limits.total)
        if self._alarm is not None and self._due < self._alarm.when():
            self._set_alarm(self._due)

    def _set_alarm(self, when: float) -> None:
        if self._alarm is not None:
            self._alarm.cancel()
        self._alarm = self._loop.call_at(when, self._on_alarm)

    def _on_alarm(self) -> None:
        if self._loop.time() < self._due:
            self._set_alarm(self._due)  # a chunk moved the deadline since: wait for the new one
            return
        self._alarm = None
        self._alarm_fired = True
        if self._alarm_task is not None:
            self._alarm_task.cancel()

    @contextlib.contextmanager
    def _watchdog(self) -> Iterator[Callable[[], bool]]:
        """One timer per read instead of one per chunk (``asyncio.timeout`` rescheduled per
        chunk is a timer made and undone per event): it fires at the deadline it was set for
        and, if a chunk moved the deadline meanwhile, sets itself again for the new one; past
        the deadline it cancels the reading task, as ``asyncio.timeout`` does. Yields
        ``expired()``: whether a CancelledError in the block is this timeout's own."""
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        self._alarm_task, self._alarm_fired = task, False
        self._set_alarm(self._due)

        def expired() -> bool:
            # Ours only if nobody else cancelled the task too (aclose, a shutdown).
            return self._alarm_fired and task.uncancel() <= cancelling

        try:
            yield expired
        finally:
            if self._alarm is not None:
                self._alarm.cancel()
            self._alarm, self._alarm_task = None, None

    async def _push(self, objects: Iterable[Any], *, waiting: bool) -> UpstreamFailure | None:
        """Queue the events of one chunk; an in-band error ends the attempt (§9.3)."""
        queued = False
        objects = iter(objects)
        for obj in objects:
            event = parse_event(obj)
            if event is None:
                continue
            hand_over = self._hand_over_first_token and not self.visible
            first_token = hand_over and isinstance(event, VISIBLE_EVENTS)
            failure = self._take(event)
            if failure is not None:
                return failure
            queued = True
            if first_token:
                # Hand the first visible output over and let the response side send it before
                # the rest of the chunk (dozens of deltas from a fast upstream) is parsed, so
                # the client's first token does not wait for them.
                self._wakeup.set()
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    # Closed in that turn (the reply ended on its first token: a stop sequence):
                    # what came with the token is still taken in, as when the chunk was parsed
                    # whole; its finish and usage are what is billed.
                    self._take_rest(objects)
                    raise
        if queued:
            self._wakeup.set()
            if len(self._events) >= HIGH_WATER_EVENTS:
                await self._wait_for_consumer(waiting)
        return None

    def _take(self, event: UpstreamEvent) -> UpstreamFailure | None:
        """Queue one event and note what it settles; an in-band error's failure instead."""
        if isinstance(event, ErrorEvent):
            return event.failure
        if isinstance(event, VISIBLE_EVENTS):
            self.visible = True
            self._decided.set()
        elif isinstance(event, Finish):
            self.finished, self.usage = True, event.usage
            self._decided.set()
        elif isinstance(event, Abort):
            self.finished = True
            self._decided.set()
        self._events.append(event)
        return None

    def _take_rest(self, objects: Iterator[Any]) -> None:
        """The rest of a chunk, queued without waiting (the stream is being closed)."""
        for obj in objects:
            event = parse_event(obj)
            if event is not None and self._take(event) is not None:
                return

    async def _wait_for_consumer(self, waiting: bool) -> None:
        # A slow client is not an idle upstream: only the total deadline applies meanwhile.
        if waiting:
            self._due, self._due_label = self._deadline, ("the whole response", self._limits.total)
        self._drained.clear()
        await self._drained.wait()
