"""What a model call returns: usage, tool calls, the reply, the error; no SDK import.

These records, and the assembly of a reply from stream chunks, live apart from ``client.py``
(which re-exports the records) so that code and tests can build and read replies without
importing the ``openai`` SDK, and so the client module keeps to transport and retries.

Usage is summed per task with ``+``. Providers report cached prompt tokens in two styles:
DeepSeek's ``prompt_cache_hit_tokens`` and the OpenAI style
``prompt_tokens_details.cached_tokens`` (Kimi, vLLM, OpenAI). Both are read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # part of prompt_tokens served from the provider's prefix cache
    requests: int = 0  # successful model calls (retries of one call count once)
    reasoning_tokens: int = 0  # part of completion_tokens spent thinking, when reported
    attempts: int = 0  # every HTTP attempt, failed ones and retries included
    # Part of prompt_tokens + completion_tokens that lsp-agent estimated because the server did
    # not say (streams without usage, timed-out or cancelled attempts): shown as an estimate.
    estimated_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            requests=self.requests + other.requests,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            attempts=self.attempts + other.attempts,
            estimated_tokens=self.estimated_tokens + other.estimated_tokens,
        )

    @property
    def reported(self) -> bool:
        """Whether the server said anything about the tokens of this usage."""
        return self.prompt_tokens + self.completion_tokens > self.estimated_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cache_hit_ratio(self) -> float:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def _int(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def estimate_tokens(chars: int) -> int:
    """Tokens of ``chars`` characters of text when the server does not say: ~4 a token, the
    cl100k average over prose and code (``context.tokens`` measures ~5 on Python source)."""
    return (max(0, chars) + 3) // 4


def estimated_usage(prompt_chars: int, reply_chars: int = 0, *, requests: int = 0) -> Usage:
    """Usage lsp-agent estimated itself: one attempt, flagged as an estimate."""
    prompt, completion = estimate_tokens(prompt_chars), estimate_tokens(reply_chars)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        requests=requests,
        attempts=1,
        estimated_tokens=prompt + completion,
    )


def usage_from_payload(payload: Mapping[str, Any] | None) -> Usage:
    """Read a ``usage`` object (as a plain dict) from either provider style; one request.
    No payload: zero tokens, to be estimated by the caller (``estimated_usage``)."""
    if not payload:
        return Usage(requests=1, attempts=1)
    details = payload.get("prompt_tokens_details") or {}
    completion_details = payload.get("completion_tokens_details") or {}
    if payload.get("prompt_cache_hit_tokens") is not None:
        cached = _int(payload.get("prompt_cache_hit_tokens"))
    else:
        cached = _int(details.get("cached_tokens") if isinstance(details, Mapping) else 0)
    # Some servers (older Kimi) put cached_tokens at the top level.
    cached = cached or _int(payload.get("cached_tokens"))
    reasoning = (
        _int(completion_details.get("reasoning_tokens"))
        if isinstance(completion_details, Mapping)
        else 0
    )
    return Usage(
        prompt_tokens=_int(payload.get("prompt_tokens")),
        completion_tokens=_int(payload.get("completion_tokens")),
        cached_tokens=cached,
        requests=1,
        reasoning_tokens=reasoning,
        attempts=1,
    )


class ModelError(Exception):
    """A model call that failed for good. ``kind`` is one of KINDS; ``message`` says what to do."""

    KINDS = (
        "rate_limit",
        "server",
        "connection",
        "timeout",
        "bad_output",
        "auth",
        "config",
        "request",
    )

    def __init__(
        self, kind: str, message: str, *, status: int | None = None, usage: Usage | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.usage = usage or Usage()  # what the failed attempts cost (estimated where unknown)

    def __repr__(self) -> str:
        return f"ModelError({self.kind!r}, {self.message!r})"


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # raw text from the model, as it wrote it
    parsed: dict[str, Any] | None  # None when the arguments are not a JSON object
    error: str | None = None  # why ``parsed`` is None: sent back to the model as the tool result


@dataclass
class ModelReply:
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning_content: str | None = None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"
    model: str = ""
    attempts: int = 1
    provider: str = ""
    max_tokens: int = 0  # the output cap the request carried (0: none)
    # Provider quirks for ``assistant_message``: set by the client from ProviderConfig.
    echo_reasoning: bool = False
    omit_empty_tool_content: bool = False


def make_tool_call(call_id: str | None, name: str, arguments: str, position: int) -> ToolCall:
    """Parse the arguments; bad JSON becomes ``error`` (never an exception) for the agent loop."""
    # Some local servers send no id; the tool result still needs one to refer to.
    call_id = call_id or f"call_{position}_{name}"
    if not arguments.strip():
        return ToolCall(call_id, name, arguments, {})
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as exc:
        error = (
            f"the arguments of {name} are not valid JSON ({exc.msg} at character "
            f"{exc.pos}); call {name} again with one complete JSON object"
        )
        return ToolCall(call_id, name, arguments, None, error)
    if not isinstance(value, dict):
        error = f"the arguments of {name} must be a JSON object, got {type(value).__name__}"
        return ToolCall(call_id, name, arguments, None, error)
    return ToolCall(call_id, name, arguments, value)


def assistant_message(reply: ModelReply) -> dict[str, Any]:
    """The assistant turn to append to the history after ``reply``.

    Tool-call turns carry ``reasoning_content`` back when the provider requires it (DeepSeek V4)
    and drop an empty ``content`` where the provider rejects it (Kimi). Reasoning never goes into
    ``content``.
    """
    message: dict[str, Any] = {"role": "assistant"}
    if not reply.tool_calls:
        message["content"] = reply.content
        return message
    if reply.content or not reply.omit_empty_tool_content:
        message["content"] = reply.content
    message["tool_calls"] = [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        for call in reply.tool_calls
    ]
    if reply.echo_reasoning and reply.reasoning_content is not None:
        message["reasoning_content"] = reply.reasoning_content
    return message


def reasoning_of(obj: Any) -> str | None:
    """``reasoning_content`` of a message or delta; the SDK keeps it in the pydantic extras."""
    value = getattr(obj, "reasoning_content", None)
    if value is None:
        value = (getattr(obj, "model_extra", None) or {}).get("reasoning_content")
    return value if isinstance(value, str) else None


class StreamAssembler:
    """Folds streamed chat-completion chunks (SDK objects, read by attribute) into one answer."""

    def __init__(self) -> None:
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, dict[str, str]] = {}
        self.finish_reason: str | None = None  # None at the end = the stream was cut short
        self.usage = Usage(requests=1, attempts=1)  # replaced by a usage chunk, if one comes
        self.chunks = 0

    @property
    def content(self) -> str:
        return "".join(self._content)

    @property
    def reasoning(self) -> str | None:
        return "".join(self._reasoning) if self._reasoning else None

    def tool_calls(self) -> list[ToolCall]:
        return [
            make_tool_call(slot["id"], slot["name"], slot["arguments"], position)
            for position, (_, slot) in enumerate(sorted(self._calls.items()))
        ]

    def absorb(self, chunk: Any) -> None:
        self.chunks += 1
        if getattr(chunk, "usage", None) is not None:
            self.usage = usage_from_payload(chunk.usage.model_dump())
        for choice in chunk.choices or []:
            if choice.index != 0:
                continue  # n > 1 is never requested
            # Kimi streams put usage inside the final choice rather than in a usage chunk.
            inside = (getattr(choice, "model_extra", None) or {}).get("usage")
            if isinstance(inside, Mapping):
                self.usage = usage_from_payload(inside)
            if choice.delta is not None:
                self._absorb_delta(choice.delta)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason

    def _absorb_delta(self, delta: Any) -> None:
        if delta.content:
            self._content.append(delta.content)
        reasoning = reasoning_of(delta)
        if reasoning:
            self._reasoning.append(reasoning)
        for piece in delta.tool_calls or []:
            slot = self._calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
            if piece.id:
                slot["id"] = piece.id
            if piece.function is not None:
                # The name comes whole in the first piece; arguments arrive in fragments.
                if piece.function.name and not slot["name"]:
                    slot["name"] = piece.function.name
                slot["arguments"] += piece.function.arguments or ""
