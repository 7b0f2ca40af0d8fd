"""Anthropic Messages content -> Command Code messages (protocol §6): the conversation, block
by block, and the system prompt it may add to.

Used by anthropic_in; kept apart so each module stays small. Every block type is mapped,
dropped with a reason, or refused with a 400 naming the offending block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.translate import history, media, thinking
from proxy.translate.errors import InvalidRequest
from proxy.translate.wire import (
    Part,
    ReasoningPart,
    SystemBlock,
    TextPart,
    ToolCallPart,
    ToolOutput,
    ToolResultPart,
    WireMessage,
)

# A `{"role": "system"}` item after the conversation started (Claude Code, SDK 2.x) becomes
# user text at its position, wrapped in the tag Claude Code itself uses for system-provided
# context inside user turns. The wire has no system role in messages (§6), and lifting the
# item into params.system would move it before the whole conversation and change the cached
# system prefix whenever a new item appears (§5 cache_control sections).
SYSTEM_ITEM_OPEN = "<system-reminder>\n"
SYSTEM_ITEM_CLOSE = "\n</system-reminder>"

# Provider-executed (server-side) tool blocks in assistant history: the CLI does not replay
# them (§6), and the upstream has no part type for them; dropping them is harmless.
_SERVER_HISTORY_BLOCKS = frozenset({"server_tool_use", "mcp_tool_use", "mcp_tool_result"})


def _cache_control(value: Any) -> dict[str, str] | None:
    if not isinstance(value, Mapping):
        return None
    kept = {key: value[key] for key in ("type", "ttl") if isinstance(value.get(key), str)}
    return kept or None


def _text_block(block: Any, param: str) -> SystemBlock:
    if not isinstance(block, Mapping) or block.get("type") != "text":
        raise InvalidRequest("Only text blocks are allowed here.", param=param)
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequest("A text block needs a string 'text'.", param=f"{param}.text")
    out: SystemBlock = {"type": "text", "text": text}
    cache_control = _cache_control(block.get("cache_control"))
    if cache_control:
        out["cache_control"] = cache_control
    return out


def text_blocks(value: Any, param: str) -> list[SystemBlock]:
    """A string or a list of text blocks (system, system items); empty texts dropped."""
    if isinstance(value, str):
        return [{"type": "text", "text": value}] if value else []
    if not isinstance(value, list):
        raise InvalidRequest("Expected a string or a list of text blocks.", param=param)
    blocks = [_text_block(block, f"{param}[{index}]") for index, block in enumerate(value)]
    return [block for block in blocks if block["text"]]


@dataclass(slots=True)
class SystemPrompt:
    """params.system being built: the client's system plus leading system items."""

    text: str | None = None  # set when the client sent a plain string and nothing was added
    blocks: list[SystemBlock] = field(default_factory=list)

    def add(self, blocks: list[SystemBlock]) -> None:
        if not blocks:
            return
        if self.text is not None:
            self.blocks = [{"type": "text", "text": self.text}] if self.text else []
            self.text = None
        self.blocks.extend(blocks)


def system_prompt(value: Any) -> SystemPrompt:
    if value is None:
        return SystemPrompt(text="")
    if isinstance(value, str):
        return SystemPrompt(text=value)
    return SystemPrompt(blocks=text_blocks(value, "system"))


def wire_system(system: SystemPrompt) -> str | list[SystemBlock]:
    """§5 sections form: every block but the last ends with a newline, as the CLI sends it,
    so sections never run together if the server concatenates them."""
    if system.text is not None:
        return system.text
    blocks = [block.copy() for block in system.blocks]
    for block in blocks[:-1]:
        if not block["text"].endswith("\n"):
            block["text"] += "\n"
    return blocks


@dataclass(slots=True)
class _UserTurn:
    """One client user message, split as the CLI splits it (§6): tool results first."""

    results: list[Part] = field(default_factory=list)
    hoisted: list[Part] = field(default_factory=list)  # images taken out of tool results
    parts: list[Part] = field(default_factory=list)


class Conversation:
    """Client messages -> wire messages. One instance per request."""

    def __init__(self, *, thinking_key: bytes, allow_remote_images: bool) -> None:
        self._key = thinking_key
        self._allow_remote = allow_remote_images
        self._tool_names: dict[str, str] = {}
        self._images = 0
        self._out: list[WireMessage] = []
        # System items waiting for the next user position (after that turn's tool results).
        self._pending_system: list[Part] = []

    def translate(self, value: Any, system: SystemPrompt) -> list[WireMessage]:
        if not isinstance(value, list) or not value:
            raise InvalidRequest("messages must be a non-empty list.", param="messages")
        history.check_message_count(len(value))
        for index, message in enumerate(value):
            self._message(message, f"messages[{index}]", system)
        self._flush_system()
        if not self._out:
            raise InvalidRequest("messages must contain a user or assistant message.", param="messages")
        return history.repair_history(self._out)

    def _message(self, message: Any, param: str, system: SystemPrompt) -> None:
        if not isinstance(message, Mapping):
            raise InvalidRequest("A message must be an object.", param=param)
        role, content = message.get("role"), message.get("content")
        # Extra keys on a message (Claude Code puts output_config on system items) are ignored.
        if role == "system":
            blocks = text_blocks(content, f"{param}.content")
            if not self._out and not self._pending_system:
                system.add(blocks)  # before the conversation: part of the system prompt
            elif blocks:
                self._pending_system.append(_system_item(blocks))
        elif role == "user":
            self._user(content, param)
        elif role == "assistant":
            self._flush_system()
            self._append("assistant", self._assistant_parts(content, f"{param}.content"))
        else:
            raise InvalidRequest("role must be user, assistant or system.", param=f"{param}.role")

    def _append(self, role: Any, parts: list[Part]) -> None:
        if parts:
            self._out.append({"role": role, "content": parts})

    def _flush_system(self) -> None:
        self._append("user", self._pending_system)
        self._pending_system = []

    def _user(self, content: Any, param: str) -> None:
        turn = _UserTurn()
        if isinstance(content, str):
            turn.parts.append(_text_part(content))
        elif isinstance(content, list):
            for index, block in enumerate(content):
                self._user_block(block, f"{param}.content[{index}]", turn)
        else:
            raise InvalidRequest("content must be a string or a list of blocks.", param=f"{param}.content")
        self._append("tool", turn.results)
        self._append("user", [*turn.hoisted, *self._pending_system, *_non_empty(turn.parts)])
        self._pending_system = []

    def _user_block(self, block: Any, param: str, turn: _UserTurn) -> None:
        kind = _block_type(block, param)
        if kind == "tool_result":
            turn.results.append(self._tool_result(block, param, turn))
        else:
            turn.parts.append(self._content_part(block, kind, param))

    def _content_part(self, block: Mapping[str, Any], kind: str, param: str) -> Part:
        """A user-visible block: text, image, or a plain-text document."""
        if kind == "text":
            return _text_part(_string(block.get("text"), f"{param}.text"))
        if kind == "image":
            return self._image(block.get("source"), f"{param}.source")
        if kind == "document":
            return _document_text(block, param)
        if kind == "search_result":
            return _search_result_text(block, param)
        raise InvalidRequest(_unsupported_block(kind), param=f"{param}.type")

    def _image(self, source: Any, param: str) -> Part:
        if not isinstance(source, Mapping):
            raise InvalidRequest("An image needs a source object.", param=param)
        kind, media_type = source.get("type"), source.get("media_type")
        # media.* check the types of data and url themselves, with the same 400s.
        data: Any = source.get("data")
        url: Any = source.get("url")
        if kind == "base64":
            media_type = media_type if isinstance(media_type, str) else ""
            return media.image_from_base64(media_type, data, param=f"{param}.data")
        if kind == "url":
            return media.image_from_url(url, param=f"{param}.url", allow_remote=self._allow_remote)
        raise InvalidRequest(
            "Image sources must be base64 or url (the Files API is not supported).", param=f"{param}.type"
        )

    def _tool_result(self, block: Mapping[str, Any], param: str, turn: _UserTurn) -> ToolResultPart:
        call_id = block.get("tool_use_id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidRequest("tool_result needs a tool_use_id.", param=f"{param}.tool_use_id")
        lines = self._tool_result_lines(block.get("content"), f"{param}.content", turn)
        value = "\n".join(lines)
        # §14 (PATLUX): is_error -> error-text output, so the model sees the call failed.
        output: ToolOutput = (
            {"type": "error-text", "value": value}
            if block.get("is_error") is True
            else {"type": "text", "value": value}
        )
        return {
            "type": "tool-result",
            "toolCallId": call_id,
            "toolName": self._tool_names.get(call_id, "unknown"),  # §6: unknown if not found
            "output": output,
        }

    def _tool_result_lines(self, content: Any, param: str, turn: _UserTurn) -> list[str]:
        if content is None:
            return []
        if isinstance(content, str):
            return [content]
        if not isinstance(content, list):
            raise InvalidRequest("tool_result content must be a string or a list of blocks.", param=param)
        lines: list[str] = []
        for index, block in enumerate(content):
            item = f"{param}[{index}]"
            kind = _block_type(block, item)
            if kind == "image":
                # §6: the server drops media inside tool results, so images move to the
                # following user turn, with a note where they were (hoistToolResultImages).
                self._images += 1
                lines.append(f"[image {self._images} attached below]")
                turn.hoisted += [
                    _text_part(f"[image {self._images}]"),
                    self._image(block.get("source"), item),
                ]
            elif kind == "tool_reference":
                # Claude Code's tool search returns references to deferred tools; every tool is
                # already declared upstream, so the reference only needs to read as text.
                lines.append(f"[tool available: {_string(block.get('tool_name'), f'{item}.tool_name')}]")
            else:
                part = self._content_part(block, kind, item)
                lines.append(part["text"] if part["type"] == "text" else "")
        return lines

    def _assistant_parts(self, content: Any, param: str) -> list[Part]:
        if isinstance(content, str):
            return _non_empty([_text_part(content)])
        if not isinstance(content, list):
            raise InvalidRequest("content must be a string or a list of blocks.", param=param)
        parts: list[Part] = []
        for index, block in enumerate(content):
            part = self._assistant_block(block, f"{param}[{index}]")
            if part is not None:
                parts.append(part)
        return _non_empty(parts)

    def _assistant_block(self, block: Any, param: str) -> Part | None:
        kind = _block_type(block, param)
        if kind == "text":
            return _text_part(_string(block.get("text"), f"{param}.text"))
        if kind == "tool_use":
            return self._tool_use(block, param)
        if kind == "thinking":
            return self._thinking(block, param)
        if kind == "redacted_thinking":
            return None  # encrypted by another provider: nothing the upstream could read
        if kind in _SERVER_HISTORY_BLOCKS or (kind.endswith("_tool_result") and kind != "tool_result"):
            return None  # provider-executed calls are not replayed (§6)
        raise InvalidRequest(_unsupported_block(kind), param=f"{param}.type")

    def _tool_use(self, block: Mapping[str, Any], param: str) -> ToolCallPart:
        call_id, name, arguments = block.get("id"), block.get("name"), block.get("input")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidRequest("tool_use needs an id.", param=f"{param}.id")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("tool_use needs a name.", param=f"{param}.name")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise InvalidRequest("tool_use input must be an object.", param=f"{param}.input")
        self._tool_names[call_id] = name
        return {"type": "tool-call", "toolCallId": call_id, "toolName": name, "input": dict(arguments)}

    def _thinking(self, block: Mapping[str, Any], param: str) -> ReasoningPart | None:
        """Reasoning this gateway signed is replayed (§6: the CLI replays prior reasoning);
        a block with a foreign, absent or broken signature is dropped: the gateway cannot
        vouch that it is this model's reasoning, and dropping reasoning never breaks a
        request (peers drop it all, §14), while a 400 would break conversations begun
        elsewhere (e.g. on Anthropic itself)."""
        text = _string(block.get("thinking"), f"{param}.thinking")
        signature = block.get("signature")
        if not text or not isinstance(signature, str) or not thinking.verify(text, signature, self._key):
            return None
        return {"type": "reasoning", "text": text}


def _block_type(block: Any, param: str) -> str:
    if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
        raise InvalidRequest("A content block must be an object with a type.", param=param)
    kind: str = block["type"]
    return kind


def _string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest("Expected a string.", param=param)
    return value


def _text_part(text: str) -> TextPart:
    return {"type": "text", "text": text}


def _non_empty(parts: list[Part]) -> list[Part]:
    """Empty text parts carry nothing and are refused by some providers."""
    return [part for part in parts if part["type"] != "text" or part["text"]]


def _system_item(blocks: list[SystemBlock]) -> TextPart:
    text = "\n".join(block["text"] for block in blocks)
    return _text_part(SYSTEM_ITEM_OPEN + text + SYSTEM_ITEM_CLOSE)


def _document_text(block: Mapping[str, Any], param: str) -> TextPart:
    """A document with text (``source.type`` text, or content blocks) becomes its title and
    text; PDFs and files cannot be sent upstream (§6 has no document part), and say so."""
    source = block.get("source")
    kind = source.get("type") if isinstance(source, Mapping) else None
    if kind == "text":
        text = _string(source.get("data"), f"{param}.source.data")  # type: ignore[union-attr]
    elif kind == "content":
        text = _block_texts(source.get("content"), f"{param}.source.content")  # type: ignore[union-attr]
    else:
        raise InvalidRequest(
            "Only documents with text (source.type 'text' or 'content') can be delivered; PDFs "
            "and files cannot be sent to Command Code, which takes text and images only.",
            param=f"{param}.source",
        )
    title = block.get("title")
    return _text_part(f"{title}\n\n{text}" if isinstance(title, str) and title else text)


def _block_texts(content: Any, param: str) -> str:
    """The text of a string or a list of text blocks (document and search-result content)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest("Expected a string or a list of text blocks.", param=param)
    texts = []
    for index, item in enumerate(content):
        if _block_type(item, f"{param}[{index}]") != "text":
            raise InvalidRequest("Only text blocks are allowed here.", param=f"{param}[{index}].type")
        texts.append(_string(item.get("text"), f"{param}[{index}].text"))
    return "\n\n".join(texts)


def _search_result_text(block: Mapping[str, Any], param: str) -> TextPart:
    """A search result (title, source, text blocks) degrades to text the model can read and
    cite from; the upstream has no citation support, so ``citations`` has nothing to enable."""
    title = _string(block.get("title"), f"{param}.title")
    source = _string(block.get("source"), f"{param}.source")
    text = _block_texts(block.get("content"), f"{param}.content")
    return _text_part(f"{title}\nSource: {source}\n\n{text}")


def _unsupported_block(kind: str) -> str:
    return (
        f"Content blocks of type {kind!r} are not supported by this gateway "
        "(supported: text, image, tool_use, tool_result, thinking, search_result, text documents)."
    )
