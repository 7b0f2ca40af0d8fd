"""Wire shapes: the Command Code request parts (protocol §5-§7) and the translated request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict


class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class ImagePart(TypedDict):
    type: Literal["image"]
    image: str  # a data URL (protocol §6)
    mimeType: str


class ReasoningPart(TypedDict):
    type: Literal["reasoning"]
    text: str


class ToolCallPart(TypedDict):
    type: Literal["tool-call"]
    toolCallId: str
    toolName: str
    input: dict[str, Any]


class ToolOutput(TypedDict):
    type: Literal["text", "error-text"]
    value: str


class ToolResultPart(TypedDict):
    type: Literal["tool-result"]
    toolCallId: str
    toolName: str
    output: ToolOutput


Part = TextPart | ImagePart | ReasoningPart | ToolCallPart | ToolResultPart


class WireMessage(TypedDict):
    role: Literal["user", "assistant", "tool"]
    content: list[Part]


class SystemBlock(TypedDict, total=False):
    type: Literal["text"]
    text: str
    cache_control: dict[str, str]


class ToolDefinition(TypedDict):
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(slots=True)
class UpstreamRequest:
    """A client request translated for Command Code, plus what the gateway enforces itself.

    ``params()`` builds the ``params`` object of the §5 envelope; the envelope around it
    (config, memory, threadId, ...) is the upstream client's business.
    """

    model: str  # the upstream model id
    messages: list[WireMessage]
    system: str | list[SystemBlock]
    tools: list[ToolDefinition] = field(default_factory=list)
    max_tokens: int | None = None  # None: the gateway's default (CC_DEFAULT_MAX_TOKENS)
    temperature: float | None = None
    reasoning_effort: str | None = None
    tool_choice: dict[str, Any] | None = None
    # Enforced by the gateway: the upstream ignores stop sequences (protocol §5, WJF1).
    stop_sequences: tuple[str, ...] = ()
    # A client conversation id (session header, prompt_cache_key, user); threadId derives from it.
    session_hint: str | None = None
    # Whose conversation it is (the gateway user): threads are scoped by it, set by the view.
    session_scope: str = ""
    # The model name the client sent, echoed back in responses.
    client_model: str = ""
    stream: bool = False

    def params(self, default_max_tokens: int) -> dict[str, Any]:
        """§5 ``params``, in the CLI's key order; optional fields only when set."""
        params: dict[str, Any] = {
            "model": self.model,
            "messages": self.messages,
            "tools": self.tools,
            # §5: an empty system makes the server inject its own ~7.5k-token CLI prompt.
            "system": self.system if self.system else " ",
            "max_tokens": self.max_tokens or default_max_tokens,
            "stream": True,  # the upstream is stream-only
        }
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.reasoning_effort is not None:
            params["reasoning_effort"] = self.reasoning_effort
        if self.tool_choice is not None:
            params["tool_choice"] = self.tool_choice
        return params
