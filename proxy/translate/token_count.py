"""Input-token estimates for ``count_tokens``, biased high, and their per-model calibration.

There is no tokenizer for the upstream's many models here, so the estimate counts UTF-8 bytes
of everything the model reads and divides by a deliberately small bytes-per-token ratio.
Clients act on the number: Claude Code compacts the conversation when it nears the context
window, so an estimate that is too low lets a request overflow, while one that is too high
only compacts a little early. Hence every constant below errs upward.

``Calibration`` then learns, per upstream model, how the raw estimate compares with the input
tokens the upstream actually reported, and scales later estimates down (or up) towards those
actuals, never below them plus a safety margin.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable

from proxy.translate.events import Usage
from proxy.translate.jsonfast import dumps
from proxy.translate.wire import Part, UpstreamRequest

# English prose runs ~3.5-4.5 bytes per token and source code ~3-3.5 on current tokenizers;
# 2.5 over-counts both by 20-60%, which leaves room for denser text (numbers, CJK, escapes).
BYTES_PER_TOKEN = 2.5
# Role markers and separators a chat template adds around each message and content part.
MESSAGE_OVERHEAD = 8
PART_OVERHEAD = 4
# Anthropic bills an image at width*height/750 tokens and downsizes images to about 1.15
# megapixels, so ~1600 tokens at most; other vision models are in the same range.
IMAGE_TOKENS = 2_000
# Providers wrap tool definitions in a tool-use preamble (Anthropic documents ~350 tokens).
TOOLS_PREAMBLE = 400
TOOL_OVERHEAD = 16
# Template tokens around the whole request (system markers, assistant prefix).
REQUEST_OVERHEAD = 16


def _utf8_len(text: str) -> int:
    # str.isascii() is O(1) in CPython: most prompts skip the encode entirely.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _part_cost(part: Part) -> tuple[int, int]:
    """(text bytes, fixed tokens) of one message part."""
    if part["type"] == "text" or part["type"] == "reasoning":
        return _utf8_len(part["text"]), PART_OVERHEAD
    if part["type"] == "image":
        return 0, IMAGE_TOKENS
    if part["type"] == "tool-call":
        return len(dumps(part["input"])) + _utf8_len(part["toolName"]), PART_OVERHEAD * 2
    if part["type"] == "tool-result":
        return _utf8_len(part["output"]["value"]), PART_OVERHEAD * 2
    return 0, PART_OVERHEAD


def _system_texts(request: UpstreamRequest) -> Iterable[str]:
    if isinstance(request.system, str):
        return (request.system,)
    return (block.get("text", "") for block in request.system)


def estimate_input_tokens(request: UpstreamRequest) -> int:
    """Input tokens the request will cost upstream, biased high (see the module docstring)."""
    text_bytes = sum(_utf8_len(text) for text in _system_texts(request))
    fixed = REQUEST_OVERHEAD
    for message in request.messages:
        fixed += MESSAGE_OVERHEAD
        for part in message["content"]:
            size, tokens = _part_cost(part)
            text_bytes += size
            fixed += tokens
    if request.tools:
        fixed += TOOLS_PREAMBLE + TOOL_OVERHEAD * len(request.tools)
        text_bytes += sum(len(dumps(tool)) for tool in request.tools)
    return math.ceil(text_bytes / BYTES_PER_TOKEN) + fixed


def estimate_output_tokens(relayed_chars: int) -> int:
    """Output tokens for text the gateway relayed when the upstream's usage never came (a reply
    it ended early, a cancelled one): the same high bias as the input estimate. Characters
    stand in for bytes, which only differ for non-ASCII text, to keep the relay hot path free
    of encoding work."""
    return math.ceil(relayed_chars / BYTES_PER_TOKEN)


def estimated_usage(input_tokens: int, relayed_chars: int) -> Usage:
    return Usage(input_tokens=input_tokens, output_tokens=estimate_output_tokens(relayed_chars))


class Calibration:
    """Per-model correction of raw estimates from the upstream's reported input tokens.

    The factor for a model is the largest actual/estimate ratio among its recent observations,
    plus a safety margin: an estimate scaled by it would have covered every one of them. It
    may drop below 1 (the raw estimate is pessimistic by design) only after ``MIN_SAMPLES``
    observations, so one unusually compressible request cannot make the next one under-count.
    Meant for one event loop; a lock keeps it correct if threads ever share it.
    """

    WINDOW = 32  # observations remembered per model
    MARGIN = 1.10  # stay 10% above what was observed
    MIN_SAMPLES = 5
    MIN_FACTOR, MAX_FACTOR = 0.25, 4.0  # beyond these an observation is not about the estimate

    def __init__(self) -> None:
        self._ratios: dict[str, deque[float]] = {}
        self._factors: dict[str, float] = {}
        self._lock = threading.Lock()

    def observe(self, model: str, estimated: int, actual_input_tokens: int) -> None:
        if estimated <= 0 or actual_input_tokens <= 0:
            return
        ratio = min(max(actual_input_tokens / estimated, self.MIN_FACTOR), self.MAX_FACTOR)
        with self._lock:
            ratios = self._ratios.setdefault(model, deque(maxlen=self.WINDOW))
            ratios.append(ratio)
            factor = max(ratios) * self.MARGIN
            if len(ratios) < self.MIN_SAMPLES:
                factor = max(factor, 1.0)
            self._factors[model] = min(factor, self.MAX_FACTOR)

    def factor(self, model: str) -> float:
        return self._factors.get(model, 1.0)

    def estimate(self, model: str, raw_estimate: int) -> int:
        return math.ceil(raw_estimate * self.factor(model))
