"""Command Code events -> OpenAI Chat Completions: SSE chunks, or one ``chat.completion`` body.

One ``ChatEncoder`` per response serves both replies (STYLE §2): a streaming reply sends what
``start``/``feed``/``close`` return; a non-streaming reply feeds every event, calls ``close()``
and then ``final_body()``. Decisions the client can observe:

- Tool-call arguments stream from ``tool-input-delta`` fragments. The final ``tool-call``
  carries the authoritative input: when the streamed text already says the same, nothing more
  is sent; when it is a prefix of the authoritative JSON, the missing suffix is sent; otherwise
  the streamed text stands, because fragments cannot be taken back (it is the model's own raw
  text; the AI SDK derives ``input`` from it). ``final_body`` always uses the authoritative input.
- An error after the 200 is one ``data: {"error": ...}`` chunk and no ``[DONE]``: the OpenAI SDK
  raises on the error chunk and never reads further (MAXE does the same, protocol §14).
- With ``response_format`` json_object/json_schema, a natural stop whose text is not JSON is a
  failure, not an answer: ``final_body`` raises FailedResponse, and a stream ends with an error
  chunk in place of the finish chunk. ``length`` and ``content_filter`` finishes are passed as
  they are: the finish reason already tells the client the output is incomplete, as at OpenAI.
- ``parallel_tool_calls: false``: the first complete call ends the reply (the upstream has no
  switch; the relay closes it as at a stop sequence), and later calls are not shown.
- Usage the upstream never sent (a reply the gateway ended early, see above) is the gateway's
  estimate: the count_tokens estimator for input, the relayed text for output; never 0/0.
- ``system_fingerprint`` is omitted (the schema types it as a string, never null), and so is
  ``usage: null`` on ordinary chunks (optional in the schema; no client in shared/clients needs it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from proxy.translate.common import (
    JSON_CHECKED_STOPS,
    OPENAI_FINISH_REASONS,
    StopKind,
    StopScanner,
    openai_usage,
    reconcile_arguments,
    stop_kind,
    tool_arguments_json,
)
from proxy.translate.errors import UPSTREAM, ClientError, FailedResponse, openai_error_body, upstream_error
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
from proxy.translate.failures import UpstreamFailure
from proxy.translate.jsonfast import JSONDecodeError, dumps, loads
from proxy.translate.openai_in import ChatRequest, ResponseFormat
from proxy.translate.sse import DONE, comment_frame, data_frame
from proxy.translate.token_count import estimated_usage

PING = comment_frame("ping")


@dataclass(slots=True)
class _Call:
    """One client tool call of this response, in index order."""

    index: int
    id: str
    name: str
    streamed: list[str] = field(default_factory=list)  # argument fragments sent so far
    input: dict[str, Any] | None = None  # the authoritative input, once tool-call arrived

    def arguments(self) -> str:
        return tool_arguments_json(self.input) if self.input is not None else "".join(self.streamed)


def _unfenced(text: str) -> str:
    """The inside of one surrounding Markdown code fence (```json ... ```), else the text."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```") and "\n" in stripped:
        return stripped[stripped.index("\n") + 1 : -3].strip()
    return stripped


def _json_error(text: str, response_format: ResponseFormat) -> ClientError | None:
    try:
        value = loads(text)
    except JSONDecodeError:
        value = JSONDecodeError
    if value is not JSONDecodeError and (isinstance(value, dict) or not response_format.wants_object):
        return None
    what = "a JSON object" if response_format.wants_object else "valid JSON"
    label = f"json_schema {response_format.name!r}" if response_format.name else response_format.type
    return ClientError(
        UPSTREAM,
        f"The model did not answer with {what} as response_format {label} requires; "
        "the gateway does not pass other text off as JSON. Retry, or adjust the prompt.",
        code="invalid_json_output",
    )


def _empty_length_error(request: ChatRequest) -> ClientError:
    """max_tokens ran out before any answer (typically all spent on reasoning). OpenAI answers
    200 with empty content and finish_reason length, and so does the gateway by default; with
    CCSITE_ALLOW_EMPTY_LENGTH=0 it fails closed, marked not retryable: the SDKs retry 5xx on
    their own, and each retry would spend the whole budget again."""
    limit = request.upstream.max_tokens
    budget = f"max_tokens ({limit})" if limit else "the default max_tokens"
    return ClientError(
        UPSTREAM,
        f"The model used all of {budget} before producing any answer (likely on reasoning); "
        "raise max_tokens or lower reasoning_effort.",
        code="empty_output_at_length",
        should_retry=False,
    )


class ChatEncoder:
    """Command Code events -> Chat Completions chunks or body. One instance per response."""

    def __init__(
        self,
        request: ChatRequest,
        *,
        completion_id: str,
        created: int,
        reasoning_content: bool = True,
        allow_empty_length: bool = True,
        input_estimate: int = 0,
    ) -> None:
        self._request = request
        self._allow_empty_length = allow_empty_length
        self._input_estimate = input_estimate
        self._relayed = 0  # characters of text, reasoning and arguments relayed (usage estimate)
        self._single_call = not request.parallel_tool_calls
        self._shown_text = False
        self._streaming = request.stream
        self._reasoning_out = reasoning_content
        self._model = request.upstream.client_model
        self._id = completion_id
        self._created = created
        stops = request.upstream.stop_sequences
        self._scanner = StopScanner(stops) if stops else None
        # A stream needs the text only to check JSON at the end; a body always needs it.
        self._keep_text = not self._streaming or request.response_format is not None
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._saw_reasoning = False
        self._reasoning_break = False
        self._calls: list[_Call] = []
        self._call_index: dict[str, int] = {}
        self._finish: Finish | None = None
        self._usage: Usage | None = None
        self._stop_matched = False
        self._done = False
        self._closed = False
        self._failure: ClientError | None = None
        self._finish_reason: str | None = None
        self._ending_problem: ClientError | None = None
        self._json_content: str | None = None  # the checked JSON text of a body
        # Every chunk shares its head and (until the finish) its tail: build them once.
        head = b'data: {"id":%b,"object":"chat.completion.chunk","created":%d,"model":%b' % (
            dumps(completion_id),
            created,
            dumps(self._model),
        )
        self._delta_head = head + b',"choices":[{"index":0,"delta":'
        self._delta_tail = b',"logprobs":null,"finish_reason":null}]}\n\n'
        self._usage_head = head + b',"choices":[],"usage":'

    @property
    def done(self) -> bool:
        return self._done

    @property
    def usage(self) -> Usage | None:
        return self._usage

    def estimated_usage(self) -> Usage:
        """The gateway's estimate, for a reply whose upstream usage never arrived."""
        return estimated_usage(self._input_estimate, self._relayed)

    def _reported_usage(self) -> Usage:
        # Never a silent zero: a reply the gateway ended early reports its estimate.
        return self._usage if self._usage is not None else self.estimated_usage()

    def start(self) -> bytes:
        return self._delta_head + b'{"role":"assistant","content":""}' + self._delta_tail

    def ping(self) -> bytes:
        return PING

    def feed(self, event: UpstreamEvent) -> bytes:
        # The hot path: text first, and nothing built for a non-streaming reply.
        if isinstance(event, TextDelta):
            return b"" if self._done else self._on_text(event.text)
        if isinstance(event, Finish):
            self._finish, self._usage = event, event.usage
            return b""
        if self._done:
            return b""
        if isinstance(event, ReasoningDelta):
            return self._on_reasoning(event.text)
        if isinstance(event, ReasoningStart):
            # Interleaved thinking (§13) gives several blocks; keep them apart in one string.
            self._reasoning_break = self._saw_reasoning
            return b""
        if isinstance(event, ToolInputStart | ToolInputDelta | ToolCall):
            return self._flush_text() + self._on_tool(event)
        if isinstance(event, ErrorEvent):
            # The upstream client normally raises these; render one the same way if it arrives.
            return self.fail(event.failure)
        # ReasoningEnd, ToolResult (provider-executed), ProviderMetadata, Abort: nothing to show.
        return b""

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return self._delta_head + dumps(delta) + self._delta_tail

    def _on_text(self, text: str) -> bytes:
        if self._scanner is not None:
            text = self._scanner.feed(text)
            if self._scanner.matched is not None:
                self._stop_matched = self._done = True
        return self._emit_text(text)

    def _flush_text(self) -> bytes:
        """Text held back by the stop scanner ends with its text block (a tool call follows)."""
        if self._scanner is None:
            return b""
        return self._emit_text(self._scanner.flush())

    def _emit_text(self, text: str) -> bytes:
        if not text:
            return b""
        self._shown_text = True
        self._relayed += len(text)
        if self._keep_text:
            self._text.append(text)
        return self._delta({"content": text}) if self._streaming else b""

    def _on_reasoning(self, text: str) -> bytes:
        if self._reasoning_break:
            text = "\n\n" + text
            self._reasoning_break = False
        self._saw_reasoning = True
        self._relayed += len(text)
        if not self._streaming:
            self._reasoning.append(text)
            return b""
        return self._delta({"reasoning_content": text}) if self._reasoning_out else b""

    def _on_tool(self, event: ToolInputStart | ToolInputDelta | ToolCall) -> bytes:
        index = self._call_index.get(event.call_id)
        if self._single_call and index is None and self._calls:
            return b""  # parallel_tool_calls false: only the first call reaches the client
        if isinstance(event, ToolInputStart):
            call = self._new_call(event.call_id, event.name)
            return self._tool_delta(call, "", first=True)
        if isinstance(event, ToolInputDelta):
            if index is None:
                return b""  # no start seen: the final tool-call will carry it whole
            self._calls[index].streamed.append(event.delta)
            self._relayed += len(event.delta)
            return self._tool_delta(self._calls[index], event.delta)
        if event.provider_executed:
            return b""  # the upstream ran it itself; not a call for the client (§8.2)
        # The upstream has no switch for parallel calls: with parallel_tool_calls false the
        # reply ends once the first call is complete, and the upstream is closed (as at a stop
        # sequence).
        self._done = self._single_call
        if index is None:
            call = self._new_call(event.call_id, event.name)
            call.input = dict(event.input)
            self._relayed += len(call.arguments())
            return self._tool_delta(call, call.arguments(), first=True)
        return self._complete_call(self._calls[index], dict(event.input))

    def _new_call(self, call_id: str, name: str) -> _Call:
        index = len(self._calls)
        call = _Call(index=index, id=call_id or f"call_{self._id}_{index}", name=name)
        self._calls.append(call)
        self._call_index[call_id] = index
        return call

    def _complete_call(self, call: _Call, final: dict[str, Any]) -> bytes:
        """Reconcile streamed fragments with the authoritative input (module docstring)."""
        call.input = final
        _, rest = reconcile_arguments("".join(call.streamed), final)
        if not rest:
            return b""
        self._relayed += len(rest)
        call.streamed.append(rest)
        return self._tool_delta(call, rest)

    def _tool_delta(self, call: _Call, arguments: str, *, first: bool = False) -> bytes:
        if not self._streaming:
            return b""
        fragment: dict[str, Any] = {"index": call.index, "function": {"arguments": arguments}}
        if first:
            fragment = {
                "index": call.index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": arguments},
            }
        return self._delta({"tool_calls": [fragment]})

    def _settle(self) -> str:
        """Decide the ending once: held-back text, the finish reason, the JSON check."""
        if self._finish_reason is not None:
            return ""
        tail = self._scanner.flush() if self._scanner is not None else ""
        if tail and self._keep_text:
            self._text.append(tail)
        kind = stop_kind(self._finish, saw_tool_calls=bool(self._calls))
        if self._stop_matched and kind is not StopKind.TOOL_USE:
            kind = StopKind.STOP_SEQUENCE
        self._finish_reason = OPENAI_FINISH_REASONS[kind]
        if kind is StopKind.LENGTH and not (
            self._shown_text or self._calls or tail or self._allow_empty_length
        ):
            self._ending_problem = _empty_length_error(self._request)
            return tail
        response_format = self._request.response_format
        if response_format is not None and kind in JSON_CHECKED_STOPS:
            text = "".join(self._text)
            # A body may be unwrapped from a code fence; streamed text already went out as is.
            if not self._streaming:
                text = self._json_content = _unfenced(text)
            self._ending_problem = _json_error(text, response_format)
        return tail

    def close(self) -> bytes:
        if self._failure is not None or self._closed:
            return b""
        self._closed = True
        tail = self._settle()
        if not self._streaming:
            return b""
        frames = [self._delta({"content": tail})] if tail else []
        if self._ending_problem is not None:
            self._failure = self._ending_problem
            frames.append(data_frame(openai_error_body(self._ending_problem)))
            return b"".join(frames)
        frames.append(
            self._delta_head + b'{},"logprobs":null,"finish_reason":%b}]}\n\n' % dumps(self._finish_reason)
        )
        if self._request.include_usage:
            frames.append(self._usage_head + dumps(openai_usage(self._reported_usage())) + b"}\n\n")
        frames.append(DONE)
        return b"".join(frames)

    def fail(self, failure: UpstreamFailure) -> bytes:
        if self._failure is not None or self._closed:
            return b""
        self._failure = upstream_error(failure)
        self._done = True
        return data_frame(openai_error_body(self._failure)) if self._streaming else b""

    def final_body(self) -> dict[str, Any]:
        if self._failure is not None:
            raise FailedResponse(self._failure)
        self._settle()
        if self._ending_problem is not None:
            raise FailedResponse(self._ending_problem)
        content = "".join(self._text) if self._json_content is None else self._json_content
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if not content and self._calls else content,
            "refusal": None,
        }
        if self._reasoning and self._reasoning_out:
            message["reasoning_content"] = "".join(self._reasoning)
        if self._calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments()},
                }
                for call in self._calls
            ]
        return {
            "id": self._id,
            "object": "chat.completion",
            "created": self._created,
            "model": self._model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": self._finish_reason}
            ],
            "usage": openai_usage(self._reported_usage()),
        }
