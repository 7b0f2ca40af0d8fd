"""Command Code events -> Anthropic Messages replies: SSE frames and the non-streaming body.

One ``MessagesEncoder`` per response, for both reply kinds (STYLE §2): a streaming reply sends
the bytes of ``start``/``feed``/``close`` as they come; a non-streaming reply feeds every event
and asks for ``final_body()``. The stream grammar is the one the SDKs and Claude Code require
(shared/clients/README.md): ``message_start``, then per block ``content_block_start`` / deltas /
``content_block_stop`` with indices 0, 1, 2, ..., then one ``message_delta`` and
``message_stop``; ``event: error`` after the 200 when the upstream fails.

Usage: ``message_start`` carries the gateway's input estimate (the count_tokens estimator), as
clients such as Claude Code show it in their context meter before the reply ends; the real
numbers go in ``message_delta``, which the SDKs apply over the snapshot field by field. A reply
the gateway ends early (a stop sequence, the one-tool-call rule), before the upstream's usage
arrives, reports the estimate (input from the estimator, output from the relayed text), never
a silent zero.

Thinking blocks are sent only when the request enabled thinking; without it the reasoning is
still read (and counted in usage) but not shown, so ``content[0]`` is text or tool_use.
"""

from __future__ import annotations

from typing import Any

from proxy.translate import thinking
from proxy.translate.anthropic_in import MessagesRequest
from proxy.translate.common import ANTHROPIC_STOP_REASONS, StopKind, StopScanner, anthropic_usage, stop_kind
from proxy.translate.errors import ClientError, FailedResponse, anthropic_error_body, upstream_error
from proxy.translate.events import (
    ErrorEvent,
    Finish,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningStart,
    TextDelta,
    ToolCall,
    ToolInputDelta,
    ToolInputStart,
    UpstreamEvent,
    Usage,
)
from proxy.translate.failures import UpstreamFailure
from proxy.translate.jsonfast import dumps, loads
from proxy.translate.sse import event_frame
from proxy.translate.token_count import estimated_usage

PING = b'event: ping\ndata: {"type": "ping"}\n\n'

_TEXT, _THINKING, _TOOL = "text", "thinking", "tool_use"
# Delta frames are the hot path: everything but the payload string is prepared per block.
_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_DELTA_FIELD = {
    _TEXT: b',"delta":{"type":"text_delta","text":',
    _THINKING: b',"delta":{"type":"thinking_delta","thinking":',
    _TOOL: b',"delta":{"type":"input_json_delta","partial_json":',
}
_DELTA_TAIL = b"}}\n\n"


class MessagesEncoder:
    """Command Code events -> Anthropic Messages SSE frames and body. One instance per response.

    Provider-executed tool calls and their results (``providerExecuted``) produce nothing: they
    are not client ``tool_use`` blocks (the client never declared them and must not run them),
    Anthropic's ``server_tool_use`` blocks only exist for Anthropic's own server tools, and the
    model's text after the call carries what it learned. The CLI does not replay them either (§6).
    """

    def __init__(
        self, request: MessagesRequest, *, message_id: str, thinking_key: bytes, input_estimate: int = 0
    ) -> None:
        self._model = request.upstream.client_model
        self._show_thinking = request.show_thinking
        self._single_call = request.single_tool_call
        self._input_estimate = input_estimate
        self._relayed = 0  # characters of text, reasoning and arguments (usage estimate)
        self._id = message_id
        self._key = thinking_key
        self._scanner = StopScanner(request.upstream.stop_sequences)
        self._scanning = self._scanner.active
        self._content: list[dict[str, Any]] = []  # finished blocks, for final_body()
        self._kind: str | None = None  # the open block's type
        self._pieces: list[str] = []  # the open block's text or argument fragments
        self._delta_head = b""
        self._tool_id = ""  # the open tool_use block's call id
        self._tool_input: dict[str, Any] | None = None  # its authoritative arguments, once known
        self._tool_blocks: dict[str, dict[str, Any]] = {}  # call id -> tool_use block, once emitted
        self._queued: list[ToolCall] = []  # other calls completed while a tool block was open
        self._finish: Finish | None = None
        self._saw_tool_calls = False
        self._stopped = False  # a stop sequence matched, or the one allowed tool call is complete
        self._error: ClientError | None = None
        self._closed = False

    @property
    def done(self) -> bool:
        return self._stopped or self._closed or self._error is not None

    @property
    def usage(self) -> Usage | None:
        return self._finish.usage if self._finish is not None else None

    def estimated_usage(self) -> Usage:
        """The gateway's estimate, for a reply whose upstream usage never arrived."""
        return estimated_usage(self._input_estimate, self._relayed)

    def _reported_usage(self) -> Usage:
        usage = self.usage
        return usage if usage is not None else self.estimated_usage()

    def start(self) -> bytes:
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": anthropic_usage(Usage(input_tokens=self._input_estimate)),
        }
        return event_frame("message_start", {"type": "message_start", "message": message})

    def feed(self, event: UpstreamEvent) -> bytes:
        if type(event) is TextDelta:  # the hot path first
            return self._text(event.text) if not self.done else b""
        if self.done:
            return b""
        if isinstance(event, ReasoningDelta):
            return self._reasoning(event.text)
        if isinstance(event, ReasoningStart | ReasoningEnd):
            # Each reasoning-start closes the previous thinking block (interleaved thinking, §8.2).
            return self._close_block() if self._kind == _THINKING else b""
        if isinstance(event, ToolInputStart):
            return self._tool_start(event)
        if isinstance(event, ToolInputDelta):
            return self._tool_delta(event)
        if isinstance(event, ToolCall):
            return self._tool_call(event) if not event.provider_executed else b""
        if isinstance(event, Finish):
            self._finish = event
        elif isinstance(event, ErrorEvent):
            return self.fail(event.failure)
        # Abort is a clean end without a reason (§8.3): close() reports end_turn. ToolResult
        # (provider-executed, see the class docstring) and ProviderMetadata show nothing.
        return b""

    def ping(self) -> bytes:
        return PING if not (self._closed or self._error is not None) else b""

    def fail(self, failure: UpstreamFailure) -> bytes:
        if self._closed or self._error is not None:
            return b""
        self._error = upstream_error(failure)
        return event_frame("error", anthropic_error_body(self._error))

    def close(self) -> bytes:
        if self._closed or self._error is not None:
            return b""
        out = self._close_block() + self._drain_queue()
        self._closed = True
        reason, sequence = self._stop()
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": anthropic_usage(self._reported_usage()),
        }
        return (
            out + event_frame("message_delta", delta) + event_frame("message_stop", {"type": "message_stop"})
        )

    def final_body(self) -> dict[str, Any]:
        if self._error is not None:
            raise FailedResponse(self._error)
        self.close()
        reason, sequence = self._stop()
        return {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": self._content,
            "stop_reason": reason,
            "stop_sequence": sequence,
            "usage": anthropic_usage(self._reported_usage()),
        }

    def _stop(self) -> tuple[str, str | None]:
        kind = stop_kind(self._finish, saw_tool_calls=self._saw_tool_calls)
        # A matched stop sequence ends the turn, unless tool calls were already sent: clients
        # drop tool calls whose message does not stop for tool_use (common.stop_kind).
        if self._stopped and kind is not StopKind.TOOL_USE:
            return ANTHROPIC_STOP_REASONS[StopKind.STOP_SEQUENCE], self._scanner.matched
        return ANTHROPIC_STOP_REASONS[kind], None

    def _text(self, text: str) -> bytes:
        out = b""
        if not text:
            return out
        if self._scanning:
            text = self._scanner.feed(text)
            self._stopped = self._scanner.matched is not None
            if not text:
                return b""
        self._relayed += len(text)
        if self._kind is not _TEXT:
            out = self._open(_TEXT, {"type": "text", "text": ""})
        self._pieces.append(text)
        return out + self._delta_head + dumps(text) + _DELTA_TAIL

    def _reasoning(self, text: str) -> bytes:
        self._relayed += len(text)
        if not self._show_thinking:
            return b""
        out = b""
        if self._kind is not _THINKING:
            out = self._open(_THINKING, {"type": "thinking", "thinking": "", "signature": ""})
        self._pieces.append(text)
        return out + self._delta_head + dumps(text) + _DELTA_TAIL

    def _tool_start(self, event: ToolInputStart) -> bytes:
        # While a tool block waits for its tool-call, other calls are sent whole when they
        # complete (one open block at a time); a start without a name waits for its tool-call.
        if self._kind is _TOOL or not (event.name and event.call_id) or event.call_id in self._tool_blocks:
            return b""
        if self._single_call and self._tool_blocks:
            return b""
        return self._open_tool(event.call_id, event.name)

    def _tool_delta(self, event: ToolInputDelta) -> bytes:
        if self._kind is not _TOOL or event.call_id != self._tool_id:
            return b""
        self._pieces.append(event.delta)
        self._relayed += len(event.delta)
        return self._delta_head + dumps(event.delta) + _DELTA_TAIL

    def _tool_call(self, event: ToolCall) -> bytes:
        if self._single_call:
            return self._only_tool_call(event)
        self._saw_tool_calls = True
        if self._kind is _TOOL and event.call_id == self._tool_id:
            out = b""
            if not self._pieces:  # no streamed arguments: send them whole
                out = self._tool_delta(ToolInputDelta(event.call_id, dumps(dict(event.input)).decode()))
            self._tool_input = dict(event.input)
            return out + self._close_block() + self._drain_queue()
        if event.call_id and event.call_id in self._tool_blocks:
            # Its block was cut short by other output; the body still gets the real arguments.
            self._tool_blocks[event.call_id]["input"] = dict(event.input)
            return b""
        if self._kind is _TOOL:
            self._queued.append(event)
            return b""
        return self._whole_tool(event)

    def _only_tool_call(self, event: ToolCall) -> bytes:
        """disable_parallel_tool_use: the first complete call ends the reply (the upstream has
        no switch, so it is closed here, as at a stop sequence); other calls are not shown."""
        if event.call_id and event.call_id in self._tool_blocks:
            self._tool_blocks[event.call_id]["input"] = dict(event.input)
            self._saw_tool_calls = self._stopped = True
            return b""
        open_other = self._kind is _TOOL and event.call_id != self._tool_id
        if open_other or (self._tool_blocks and event.call_id not in self._tool_blocks):
            return b""
        self._saw_tool_calls = self._stopped = True
        if self._kind is _TOOL:
            out = b""
            if not self._pieces:
                out = self._tool_delta(ToolInputDelta(event.call_id, dumps(dict(event.input)).decode()))
            self._tool_input = dict(event.input)
            return out + self._close_block()
        return self._whole_tool(event)

    def _whole_tool(self, event: ToolCall) -> bytes:
        call_id = event.call_id or f"toolu_{self._id}_{len(self._content)}"
        out = self._open_tool(call_id, event.name)
        out += self._tool_delta(ToolInputDelta(call_id, dumps(dict(event.input)).decode()))
        self._tool_input = dict(event.input)
        return out + self._close_block()

    def _drain_queue(self) -> bytes:
        queued, self._queued = self._queued, []
        return b"".join(self._whole_tool(event) for event in queued)

    def _open_tool(self, call_id: str, name: str) -> bytes:
        self._tool_id, self._tool_input = call_id, None
        return self._open(_TOOL, {"type": "tool_use", "id": call_id, "name": name, "input": {}})

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close_block()
        index = len(self._content)
        self._content.append(block)
        self._kind = kind
        self._pieces = []
        self._delta_head = _DELTA_HEAD + str(index).encode() + _DELTA_FIELD[kind]
        start = {"type": "content_block_start", "index": index, "content_block": block}
        return out + event_frame("content_block_start", start)

    def _close_block(self) -> bytes:
        """Finish the open block: held-back text, the thinking signature, the stop event."""
        kind = self._kind
        if kind is None:
            return b""
        index = len(self._content) - 1
        block = self._content[index]  # its start frame is already serialized: fill it in
        out = b""
        if kind is _TEXT:
            held = self._scanner.flush() if self._scanning else ""
            if held:
                self._pieces.append(held)
                out = self._delta_head + dumps(held) + _DELTA_TAIL
            block["text"] = "".join(self._pieces)
        elif kind is _THINKING:
            block["thinking"] = "".join(self._pieces)
            block["signature"] = thinking.sign(block["thinking"], self._key)
            delta = {"type": "signature_delta", "signature": block["signature"]}
            out = event_frame(
                "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
            )
        else:
            block["input"] = self._tool_input if self._tool_input is not None else _parsed(self._pieces)
            self._tool_blocks[self._tool_id] = block
        self._kind, self._pieces = None, []
        return out + event_frame("content_block_stop", {"type": "content_block_stop", "index": index})


def _parsed(fragments: list[str]) -> dict[str, Any]:
    """Streamed arguments whose tool-call never came (the stream was cut short)."""
    try:
        value = loads("".join(fragments) or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
