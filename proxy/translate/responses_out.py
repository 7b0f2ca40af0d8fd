"""Command Code events -> OpenAI Responses: named SSE events, or one ``response`` object.

One ``ResponsesEncoder`` per response serves both replies (STYLE §2): a streaming reply sends
what ``start``/``feed``/``close`` return; a non-streaming reply feeds every event, calls
``close()`` and then ``final_body()``. Decisions the client can observe:

- Every event carries ``sequence_number`` 0, 1, 2, ... and the stream always ends with exactly
  one terminal event: ``response.completed``, ``response.incomplete`` (the output limit or a
  content filter) or ``response.failed`` (an error after the 200). No ``[DONE]``.
- Output items follow the upstream's order: a ``reasoning`` item, ``message`` items for text,
  ``function_call`` items for client tool calls. Reasoning text streams as summary text when the
  client asked for ``reasoning.summary`` (what Codex shows), else as ``reasoning_text`` content.
  With ``include: ["reasoning.encrypted_content"]`` the finished reasoning item carries the
  reasoning sealed by the gateway (proxy/translate/reasoning_seal.py), for the next turn.
- A function call's arguments stream as deltas; its ``.done`` event and item carry the
  authoritative arguments from the upstream's final ``tool-call`` (suffix completion as on the
  chat surface; a Responses client takes the ``.done`` text as the truth).
- Calls of namespace tools come back as ``namespace`` + ``name`` (responses_in flattens them).
- ``text.format`` json_object / json_schema: a natural stop whose text is not JSON fails the
  response (as on the chat surface).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proxy.translate.common import JSON_CHECKED_STOPS, StopKind, reconcile_arguments, stop_kind
from proxy.translate.errors import ClientError, FailedResponse, upstream_error
from proxy.translate.events import (
    ErrorEvent,
    Finish,
    ReasoningDelta,
    ReasoningStart,
    TextDelta,
    ToolCall,
    ToolInputDelta,
    ToolInputStart,
    UpstreamEvent,
    Usage,
)
from proxy.translate.failures import FailureKind, UpstreamFailure
from proxy.translate.jsonfast import dumps
from proxy.translate.openai_out import _json_error
from proxy.translate.reasoning_seal import seal
from proxy.translate.responses_in import ResponsesRequest
from proxy.translate.sse import comment_frame, event_frame
from proxy.translate.token_count import estimated_usage

PING = comment_frame("keepalive")
_TEXT_DELTA_HEAD = (
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":'
)
_TEXT_DELTA_TAIL = b',"logprobs":[]}\n\n'
# ResponseErrorCode has no upstream-specific values: rate limits and everything else.
_RATE_LIMITED = frozenset({FailureKind.WINDOW, FailureKind.QUOTA})

OnComplete = Callable[[list[dict[str, Any]]], None]


def responses_usage(usage: Usage) -> dict[str, Any]:
    """Responses usage: input tokens include cache reads and writes (as prompt_tokens on chat)."""
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


@dataclass(slots=True)
class _Item:
    """One output item being built: its index, id and what has been streamed into it."""

    index: int
    kind: str  # "message" | "reasoning" | "function_call"
    id: str
    parts: list[list[str]] = field(default_factory=list)  # text of each content/summary part
    call_id: str = ""
    name: str = ""
    namespace: str | None = None
    arguments: str | None = None  # the authoritative arguments, once tool-call arrived
    done: bool = False

    @property
    def streamed(self) -> str:
        return "".join(self.parts[0]) if self.parts else ""


class ResponsesEncoder:
    """Command Code events -> Responses events or object. One instance per response."""

    def __init__(
        self,
        request: ResponsesRequest,
        *,
        response_id: str,
        created_at: int,
        reasoning_key: bytes,
        on_complete: OnComplete | None = None,
        clock: Callable[[], float] = time.time,
        input_estimate: int = 0,
    ) -> None:
        self._request = request
        self._id = response_id
        self._created_at = created_at
        self._key = reasoning_key
        self._on_complete = on_complete
        self._streaming = request.stream
        self._sequence = 0
        self._items: list[_Item] = []
        self._open: _Item | None = None  # the open message or reasoning item
        self._calls: dict[str, _Item] = {}
        self._finish: Finish | None = None
        self._usage: Usage | None = None
        self._failure: ClientError | None = None
        self._closed = False
        self._status = "in_progress"
        self._incomplete_reason: str | None = None
        self._clock = clock
        self._input_estimate = input_estimate
        # Item ids derive from the response id: unique per response, reproducible in tests.
        self._item_prefix = response_id.removeprefix("resp_")[:16]
        self._text_head = self._text_middle = b""

    # -- the Encoder protocol -------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._failure is not None

    @property
    def usage(self) -> Usage | None:
        return self._usage

    def estimated_usage(self) -> Usage:
        """The gateway's estimate (input estimator, relayed output) for a reply whose upstream
        usage never arrived: what the client is told and the request log records then."""
        relayed = sum(len(text) for item in self._items for part in item.parts for text in part)
        return estimated_usage(self._input_estimate, relayed)

    def start(self) -> bytes:
        created = self._event("response.created", response=self._response(output=[]))
        return created + self._event("response.in_progress", response=self._response(output=[]))

    def ping(self) -> bytes:
        return PING

    def feed(self, event: UpstreamEvent) -> bytes:
        if self._failure is not None or self._closed:
            return b""
        if isinstance(event, TextDelta):
            return self._on_text(event.text)
        if isinstance(event, ReasoningDelta):
            return self._on_reasoning(event.text)
        if isinstance(event, ReasoningStart):
            return self._on_reasoning_start()
        if isinstance(event, ToolInputStart | ToolInputDelta | ToolCall):
            return self._on_tool(event)
        if isinstance(event, Finish):
            self._finish, self._usage = event, event.usage
            return b""
        if isinstance(event, ErrorEvent):
            return self.fail(event.failure)
        return b""  # ReasoningEnd, provider-executed results, metadata, abort: nothing to show

    def close(self) -> bytes:
        if self._failure is not None or self._closed:
            return b""
        self._closed = True
        frames = self._close_open() + b"".join(
            self._finish_call(call) for call in self._calls.values() if not call.done
        )
        kind = stop_kind(self._finish, saw_tool_calls=bool(self._calls))
        problem = self._json_problem(kind)
        if problem is not None:
            return frames + self._fail_with(problem)
        if kind is StopKind.LENGTH:
            self._status, self._incomplete_reason = "incomplete", "max_output_tokens"
        elif kind is StopKind.CONTENT_FILTER:
            self._status, self._incomplete_reason = "incomplete", "content_filter"
        else:
            self._status = "completed"
        output = self._output()
        if self._on_complete is not None and self._request.store:
            self._on_complete(self._output(for_store=True))
        terminal = "response.completed" if self._status == "completed" else "response.incomplete"
        return frames + self._event(terminal, response=self._response(output=output))

    def fail(self, failure: UpstreamFailure) -> bytes:
        if self._failure is not None or self._closed:
            return b""
        error = upstream_error(failure)
        code = "rate_limit_exceeded" if failure.kind in _RATE_LIMITED else "server_error"
        return self._fail_with(ClientError(error.error_class, error.message, code=code))

    def final_body(self) -> dict[str, Any]:
        if self._failure is not None:
            raise FailedResponse(self._failure)
        if not self._closed:
            self.close()
            if self._failure is not None:
                raise FailedResponse(self._failure)
        return self._response(output=self._output())

    # -- events ---------------------------------------------------------------------------

    def _event(self, kind: str, **payload: Any) -> bytes:
        sequence = self._sequence
        self._sequence += 1
        if not self._streaming:
            return b""
        return event_frame(kind, {"type": kind, "sequence_number": sequence, **payload})

    def _new_item(self, kind: str, prefix: str) -> _Item:
        item = _Item(index=len(self._items), kind=kind, id=f"{prefix}_{self._item_prefix}{len(self._items)}")
        self._items.append(item)
        return item

    def _added(self, item: _Item) -> bytes:
        return self._event(
            "response.output_item.added", output_index=item.index, item=self._item_body(item, "in_progress")
        )

    def _item_done(self, item: _Item) -> bytes:
        item.done = True
        return self._event(
            "response.output_item.done", output_index=item.index, item=self._item_body(item, "completed")
        )

    # -- text -----------------------------------------------------------------------------

    def _on_text(self, text: str) -> bytes:
        frames = b""
        if self._open is None or self._open.kind != "message":
            frames = self._close_open()
            self._open = self._new_item("message", "msg")
            self._open.parts.append([])
            frames += self._added(self._open) + self._event(
                "response.content_part.added",
                item_id=self._open.id,
                output_index=self._open.index,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            )
            self._text_head = _TEXT_DELTA_HEAD
            self._text_middle = b',"item_id":%b,"output_index":%d,"content_index":0,"delta":' % (
                dumps(self._open.id),
                self._open.index,
            )
        self._open.parts[0].append(text)
        # The hot path: one frame per text delta from templates built when the item opened
        # (the same bytes _event would build, in the same key order).
        sequence = self._sequence
        self._sequence += 1
        if not self._streaming:
            return frames
        return frames + b"%b%d%b%b%b" % (
            self._text_head,
            sequence,
            self._text_middle,
            dumps(text),
            _TEXT_DELTA_TAIL,
        )

    def _close_message(self, item: _Item) -> bytes:
        text = item.streamed
        where = {"item_id": item.id, "output_index": item.index, "content_index": 0}
        return (
            self._event("response.output_text.done", **where, text=text, logprobs=[])
            + self._event("response.content_part.done", **where, part=_output_text(text))
            + self._item_done(item)
        )

    # -- reasoning ------------------------------------------------------------------------

    def _on_reasoning_start(self) -> bytes:
        if self._open is not None and self._open.kind == "reasoning" and self._open.parts:
            return self._close_reasoning_part(self._open)  # interleaved: a new part follows
        return b""

    def _on_reasoning(self, text: str) -> bytes:
        frames = b""
        if self._open is None or self._open.kind != "reasoning":
            frames = self._close_open()
            self._open = self._new_item("reasoning", "rs")
            frames += self._added(self._open)
        item = self._open
        if not item.parts or item.parts[-1] is _CLOSED_PART:
            frames += self._open_reasoning_part(item)
        item.parts[-1].append(text)
        index = len(item.parts) - 1
        if self._request.reasoning_summary:
            return frames + self._event(
                "response.reasoning_summary_text.delta",
                item_id=item.id,
                output_index=item.index,
                summary_index=index,
                delta=text,
            )
        return frames + self._event(
            "response.reasoning_text.delta",
            item_id=item.id,
            output_index=item.index,
            content_index=index,
            delta=text,
        )

    def _open_reasoning_part(self, item: _Item) -> bytes:
        if item.parts and item.parts[-1] is _CLOSED_PART:
            item.parts.pop()
        item.parts.append([])
        index = len(item.parts) - 1
        if self._request.reasoning_summary:
            return self._event(
                "response.reasoning_summary_part.added",
                item_id=item.id,
                output_index=item.index,
                summary_index=index,
                part={"type": "summary_text", "text": ""},
            )
        return self._event(
            "response.content_part.added",
            item_id=item.id,
            output_index=item.index,
            content_index=index,
            part={"type": "reasoning_text", "text": ""},
        )

    def _close_reasoning_part(self, item: _Item) -> bytes:
        if not item.parts or item.parts[-1] is _CLOSED_PART:
            return b""
        index = len(item.parts) - 1
        text = "".join(item.parts[index])
        item.parts.append(_CLOSED_PART)
        if self._request.reasoning_summary:
            where = {"item_id": item.id, "output_index": item.index, "summary_index": index}
            return self._event("response.reasoning_summary_text.done", **where, text=text) + self._event(
                "response.reasoning_summary_part.done", **where, part={"type": "summary_text", "text": text}
            )
        where = {"item_id": item.id, "output_index": item.index, "content_index": index}
        return self._event("response.reasoning_text.done", **where, text=text) + self._event(
            "response.content_part.done", **where, part={"type": "reasoning_text", "text": text}
        )

    def _reasoning_texts(self, item: _Item) -> list[str]:
        return ["".join(part) for part in item.parts if part is not _CLOSED_PART]

    # -- function calls -------------------------------------------------------------------

    def _on_tool(self, event: ToolInputStart | ToolInputDelta | ToolCall) -> bytes:
        if isinstance(event, ToolInputStart):
            return self._close_open() + self._start_call(event.call_id, event.name)
        call = self._calls.get(event.call_id)
        if isinstance(event, ToolInputDelta):
            if call is None or call.done:
                return b""  # no start seen: the final tool-call carries it whole
            call.parts[0].append(event.delta)
            return self._arguments_delta(call, event.delta)
        if event.provider_executed:
            return b""  # the upstream ran it itself; not a call for the client (§8.2)
        frames = b""
        if call is None:
            frames = self._close_open() + self._start_call(event.call_id, event.name)
            call = self._calls[event.call_id]
        return frames + self._complete_call(call, dict(event.input))

    def _start_call(self, call_id: str, name: str) -> bytes:
        item = self._new_item("function_call", "fc")
        item.call_id = call_id or f"call_{item.id}"
        item.namespace, item.name = self._request.namespaced.get(name, (None, name))
        item.parts.append([])
        self._calls[call_id] = item
        return self._added(item)

    def _arguments_delta(self, call: _Item, delta: str) -> bytes:
        return self._event(
            "response.function_call_arguments.delta", item_id=call.id, output_index=call.index, delta=delta
        )

    def _complete_call(self, call: _Item, final: dict[str, Any]) -> bytes:
        call.arguments, rest = reconcile_arguments(call.streamed, final)
        frames = b""
        if rest:
            call.parts[0].append(rest)
            frames = self._arguments_delta(call, rest)
        return frames + self._finish_call(call)

    def _finish_call(self, call: _Item) -> bytes:
        if call.arguments is None:
            call.arguments = call.streamed  # the stream ended without the final tool-call
        return self._event(
            "response.function_call_arguments.done",
            item_id=call.id,
            output_index=call.index,
            name=call.name,
            arguments=call.arguments,
        ) + self._item_done(call)

    # -- ending ---------------------------------------------------------------------------

    def _close_open(self) -> bytes:
        item, self._open = self._open, None
        if item is None:
            return b""
        if item.kind == "message":
            return self._close_message(item)
        return self._close_reasoning_part(item) + self._item_done(item)

    def _json_problem(self, kind: StopKind) -> ClientError | None:
        response_format = self._request.response_format
        if response_format is None or kind not in JSON_CHECKED_STOPS:
            return None
        text = "".join(item.streamed for item in self._items if item.kind == "message").strip()
        return _json_error(text, response_format)

    def _fail_with(self, error: ClientError) -> bytes:
        self._failure, self._status = error, "failed"
        return self._event("response.failed", response=self._response(output=self._output()))

    def _output(self, *, for_store: bool = False) -> list[dict[str, Any]]:
        return [self._item_body(item, "completed", for_store=for_store) for item in self._items]

    def _item_status(self, item: _Item, status: str) -> str:
        if status == "completed" and self._status == "incomplete" and item.kind == "message":
            return "incomplete"
        return status

    def _item_body(self, item: _Item, status: str, *, for_store: bool = False) -> dict[str, Any]:
        status = self._item_status(item, status)
        if item.kind == "message":
            content = [_output_text(item.streamed)] if status != "in_progress" else []
            return {
                "type": "message",
                "id": item.id,
                "status": status,
                "role": "assistant",
                "content": content,
            }
        if item.kind == "function_call":
            body: dict[str, Any] = {
                "type": "function_call",
                "id": item.id,
                "call_id": item.call_id,
                "name": item.name,
                "arguments": (item.arguments or "") if status != "in_progress" else "",
                "status": status,
            }
            if item.namespace is not None:
                body["namespace"] = item.namespace
            return body
        return self._reasoning_body(item, status, for_store=for_store)

    def _reasoning_body(self, item: _Item, status: str, *, for_store: bool) -> dict[str, Any]:
        texts = self._reasoning_texts(item) if status != "in_progress" else []
        body: dict[str, Any] = {"type": "reasoning", "id": item.id, "summary": [], "status": status}
        if self._request.reasoning_summary:
            body["summary"] = [{"type": "summary_text", "text": text} for text in texts]
        else:
            body["content"] = [{"type": "reasoning_text", "text": text} for text in texts]
        if texts and (for_store or self._request.include_encrypted_reasoning):
            body["encrypted_content"] = seal("\n\n".join(texts), self._key)
        return body

    def _response(self, *, output: list[dict[str, Any]]) -> dict[str, Any]:
        echo = self._request.echo
        done = self._status == "completed"
        response: dict[str, Any] = {
            "id": self._id,
            "object": "response",
            "created_at": self._created_at,
            "status": self._status,
            "completed_at": int(self._clock()) if done else None,
            "error": (
                {"code": self._failure.code or "server_error", "message": self._failure.message}
                if self._failure is not None
                else None
            ),
            "incomplete_details": (
                {"reason": self._incomplete_reason} if self._incomplete_reason is not None else None
            ),
            "model": self._request.upstream.client_model,
            "output": output,
            "store": self._request.store,
            "truncation": "disabled",
            **echo,
        }
        if self._status != "in_progress":  # absent until known (the schema has no null usage)
            usage = self._usage
            if usage is None and self._failure is None:
                # Never a silent zero: a reply that ended without the upstream's usage reports
                # the gateway's estimate (as the request log records it).
                usage = self.estimated_usage()
            response["usage"] = responses_usage(usage or Usage())
        return response


# A marker appended to a reasoning item's parts once its last part was closed.
_CLOSED_PART: list[str] = []


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
