"""The model client: the only module in lsp-agent that imports the ``openai`` SDK.

``OpenAIChatClient`` talks to any OpenAI-compatible chat-completions endpoint. The SDK's own
retries are off (``max_retries=0``): this module retries itself so that it can honour
``Retry-After``/``retry-after-ms``, treat a stream that stops without a ``finish_reason`` as a
dropped connection, keep the concurrency slot free while it sleeps, and end with a
``ModelError`` whose message says what happened and what to check.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import html
import json
import logging
import random
import re
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import openai

from lsp_agent.agents.providers import (
    LOCAL_PLACEHOLDER_KEY,
    ProviderConfig,
    prepare_messages,
    resolve_provider,
    validate_tool_schemas,
)
from lsp_agent.agents.sizing import DEFAULT_WINDOW, reply_tokens
from lsp_agent.agents.usage import (
    ModelError,
    ModelReply,
    StreamAssembler,
    ToolCall,
    Usage,
    assistant_message,
    estimate_tokens,
    estimated_usage,
    make_tool_call,
    reasoning_of,
    usage_from_payload,
)
from lsp_agent.config import Settings
from lsp_agent.redact import MIN_LITERAL

try:  # The transport the SDK runs on: httpx2 in openai 3.x, httpx before.
    import httpx2 as _transport
except ImportError:  # pragma: no cover - depends on the installed SDK
    import httpx as _transport  # type: ignore[no-redef]

__all__ = [
    "ModelClient",
    "ModelError",
    "ModelReply",
    "OpenAIChatClient",
    "ToolCall",
    "Usage",
    "assistant_message",
]

logger = logging.getLogger(__name__)


class ModelClient(Protocol):
    async def complete(
        self,
        *,
        role: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> ModelReply: ...


class _TruncatedStream(Exception):
    """The stream ended (or broke) before a finish_reason: the provider hung up mid-answer."""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int  # retries after the first attempt
    backoff_base: float  # seconds; doubles per attempt
    backoff_max: float
    retry_after_max: float  # cap on a server's Retry-After

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # Honour the server; a little jitter keeps parallel callers from returning in step.
            return min(retry_after, self.retry_after_max) + random.uniform(0, self.backoff_base / 4)
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class _Failure:
    kind: str
    retryable: bool
    what: str  # e.g. "rate limited by deepseek (429)"
    status: int | None = None
    retry_after: float | None = None
    hint: str = ""
    detail: str = ""  # the underlying error, for connection failures

    def describe(self) -> str:
        text = f"{self.what} ({self.detail})" if self.detail else self.what
        if self.retry_after is None:
            return text
        return f"{text}; Retry-After {self.retry_after:g} s"

    def final_error(self, attempts: int) -> ModelError:
        message = self.what
        if self.retryable:
            plural = "s" if attempts != 1 else ""
            if self.kind in ("rate_limit", "server"):
                message += f" {attempts} time{plural}"
            else:
                message += f"; gave up after {attempts} attempt{plural}"
            if self.retry_after is not None:
                message += f"; last Retry-After {self.retry_after:g} s"
        if self.detail:
            message += f"; last error: {self.detail}"
        if self.hint:
            message += f": {self.hint}"
        return ModelError(self.kind, message, status=self.status)


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    try:
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def _server_message(exc: openai.APIStatusError, provider: ProviderConfig) -> str:
    body = exc.body
    text = body.get("message") if isinstance(body, Mapping) else None
    text = str(text or exc.message)[:300]
    return mask_key(text, provider.api_key)


def mask_key(text: str, key: str) -> str:
    """Hide the key where a server echoes it back. A key shorter than the redactor's floor is
    left alone: masking ``x`` would turn "exceeds" into "e***ceeds" and hide the cause."""
    if len(key) < MIN_LITERAL or key == LOCAL_PLACEHOLDER_KEY:
        return text
    return text.replace(key, "***")


def is_local_endpoint(provider: ProviderConfig) -> bool:
    """A server on this machine, which often serves one request at a time and keeps generating
    an answer nobody waits for any more (``ProviderConfig.local``)."""
    return provider.local


# Fields servers use for the context window in /v1/models (vLLM: max_model_len; LM Studio,
# OpenRouter: context_length; llama.cpp-style: n_ctx, also inside "meta").
WINDOW_FIELDS = ("n_ctx", "max_model_len", "context_length", "context_window", "max_context_length")


def window_from_models(payload: Any, model: str = "") -> int | None:
    """The context window a /v1/models answer reports for ``model`` (else its first entry)."""
    if not isinstance(payload, Mapping):
        return None
    entries = [e for e in payload.get("data") or [] if isinstance(e, Mapping)]
    entries.sort(key=lambda e: e.get("id") != model)  # the model in use first
    for where in [*entries, payload]:
        for place in (where, where.get("meta")):
            if not isinstance(place, Mapping):
                continue
            for name in WINDOW_FIELDS:
                value = place.get(name)
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    return value
    return None


def window_from_props(payload: Any) -> int | None:
    """llama.cpp's ``llama-server`` says its runtime window in ``/props``."""
    if not isinstance(payload, Mapping):
        return None
    settings = payload.get("default_generation_settings")
    for place in (settings, payload):
        value = place.get("n_ctx") if isinstance(place, Mapping) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


# Keys of extra_body that only make sense beside ``tools``: a tool-less request (the coders)
# must not carry them (llama-cpp-python answers a tool_choice without tools with an error).
TOOL_ONLY_KEYS = frozenset({"tool_choice", "parallel_tool_calls", "tools", "functions"})
_ENTITY = re.compile(r"&(?:gt|lt|amp|quot|#39|#x27|#34|#x22);")


def _cause(exc: BaseException) -> str:
    """The transport's own words (the SDK's "Connection error." says nothing)."""
    inner = exc.__cause__ or exc.__context__
    text = str(inner or exc) or type(inner or exc).__name__
    return text[:200]


def classify_error(exc: BaseException, provider: ProviderConfig) -> _Failure | None:
    """Map an SDK/transport failure to a kind; None for anything that is not a model failure."""
    name, url = provider.name, provider.base_url
    if isinstance(exc, _TruncatedStream):
        return _Failure(
            "connection", True, f"{name} dropped the answer before it finished", detail=str(exc)
        )
    if isinstance(exc, openai.APITimeoutError | _transport.TimeoutException):
        if is_local_endpoint(provider):
            # The server may still be generating the abandoned answer: the same request again
            # would queue behind it on a single-slot server (issue 17: five timeouts, 637 s).
            return _Failure(
                "timeout",
                False,
                f"no answer from {name} at {url} in time",
                hint=(
                    "a local server often serves one request at a time and may still be "
                    "generating that answer; raise model.timeout_s, set model.concurrency (and "
                    "--jobs) to the server's slots (llama.cpp: --parallel), or use a smaller "
                    "model; the request was not retried"
                ),
            )
        return _Failure("timeout", True, f"no answer from {name} at {url} in time")
    if isinstance(exc, openai.APIConnectionError | _transport.TransportError):
        return _Failure("connection", True, f"cannot reach {name} at {url}", detail=_cause(exc))
    if isinstance(exc, openai.APIResponseValidationError):
        return _Failure("bad_output", False, f"{name} sent a response that is not chat-completions")
    if isinstance(exc, openai.APIStatusError):
        return _status_failure(exc, provider)
    if isinstance(exc, openai.APIError):
        # An error event inside a 200 stream (providers send these when overloaded mid-answer).
        return _Failure("server", True, f"{name} reported an error", detail=exc.message[:200])
    return None


def _status_failure(exc: openai.APIStatusError, provider: ProviderConfig) -> _Failure:
    name, status, detail = provider.name, exc.status_code, _server_message(exc, provider)
    if status in (401, 403):
        var = provider.api_key_env or "LSP_AGENT_API_KEY"
        what = f"{name} rejected the API key ({status}: {detail})"
        return _Failure("auth", False, what, status, hint=f"check {var}")
    if status == 429:
        what = f"rate limited by {name} (429)"
        return _Failure("rate_limit", True, what, status, _retry_after(exc))
    if status >= 500 or status in (408, 409):
        what = f"{name} server error ({status}: {detail})"
        return _Failure("server", True, what, status, _retry_after(exc))
    hint = "check the model name (model / models / LSP_AGENT_MODEL) and the base URL"
    what = f"{name} rejected the request ({status}: {detail})"
    return _Failure("request", False, what, status, hint=hint if status == 404 else "")


class OpenAIChatClient:
    """``ModelClient`` over ``openai.AsyncOpenAI``; one instance is shared by every task."""

    def __init__(
        self,
        provider: ProviderConfig,
        *,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        retry_after_max: float = 60.0,
        stream_roles: Collection[str] = ("coder",),
    ) -> None:
        self.provider = provider
        self.timeout = timeout
        self.policy = RetryPolicy(max_retries, backoff_base, backoff_max, retry_after_max)
        self.stream_roles = frozenset(stream_roles)
        self._semaphore = asyncio.Semaphore(max(1, concurrency))
        self._sdk: openai.AsyncOpenAI | None = None
        self._sdk_loop: asyncio.AbstractEventLoop | None = None
        self._discovered_model: str | None = None
        self._models_page: Any = None  # /v1/models, asked at most once
        self._window_lock = asyncio.Lock()
        self._window_learned = provider.window_source != "preset"
        self.total_usage = Usage()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        env: Mapping[str, str] | None = None,
        *,
        provider: ProviderConfig | None = None,
        **kwargs: Any,
    ) -> OpenAIChatClient:
        """The one way the server, the batch command and goal runs build their client: the
        provider from ``settings`` (or the one the caller already resolved, to report its
        errors first), concurrency, timeout and retries from ``settings.model``."""
        model = settings.model
        kwargs.setdefault("concurrency", model.concurrency)
        kwargs.setdefault("timeout", model.timeout_s)
        kwargs.setdefault("max_retries", model.max_retries)
        return cls(provider or resolve_provider(settings, env), **kwargs)

    def __repr__(self) -> str:
        return f"OpenAIChatClient({self.provider!r})"

    # -- public ----------------------------------------------------------------------------
    async def complete(
        self,
        *,
        role: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        stream: bool | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> ModelReply:
        """One chat completion with retries. ``options`` go into the request verbatim."""
        if tools:
            try:
                validate_tool_schemas(tools)
            except ValueError as exc:
                raise ModelError("config", str(exc)) from None
        use_stream = role in self.stream_roles if stream is None else stream
        model = await self._model_for(role)
        await self.learn_window()
        prepared = prepare_messages(messages, self.provider)
        request: dict[str, Any] = {
            "model": model,
            "messages": prepared,
            # The reply's room is part of the window's sizing (sizing.py): always sent.
            "max_tokens": self.reply_room(role),
            **dict(options or {}),
        }
        if tools:
            request["tools"] = tools
            # OpenAI's default, but llama-cpp-python silently drops tools without it.
            request.setdefault("tool_choice", "auto")
        extra = {
            k: v for k, v in self.provider.extra_body.items() if tools or k not in TOOL_ONLY_KEYS
        }
        if extra:
            request["extra_body"] = extra
        if use_stream:
            request["stream"] = True
            request["stream_options"] = {"include_usage": True}
        # What the server would have counted, for the attempts it reports nothing about.
        sent_chars = len(json.dumps(prepared, ensure_ascii=False)) + len(json.dumps(tools or []))
        spent = Usage()  # failed attempts: the server read the prompt, so it is charged

        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                async with self._semaphore:
                    reply = await self._attempt(request, use_stream)
            except ModelError as exc:
                exc.usage = spent + exc.usage
                raise
            except asyncio.CancelledError:
                # Cancelled mid-request: the server read the prompt; the caller charges it.
                raise
            except Exception as exc:
                failure = classify_error(exc, self.provider)
                if failure is None:
                    raise
                if failure.kind in ("timeout", "connection", "server") and failure.status is None:
                    spent = spent + estimated_usage(sent_chars)
                else:
                    spent = spent + Usage(attempts=1)
                if not failure.retryable or attempt > self.policy.max_retries:
                    error = failure.final_error(attempt)
                    error.usage = spent
                    self.total_usage = self.total_usage + spent
                    raise error from exc
                delay = self.policy.delay(attempt, failure.retry_after)
                logger.warning(
                    "%s: %s; retry %d of %d in %.1f s",
                    self.provider.name,
                    failure.describe(),
                    attempt,
                    self.policy.max_retries,
                    delay,
                )
                await asyncio.sleep(delay)  # outside the semaphore: others may use the slot
                continue
            reply.model = model
            reply.attempts = attempt
            if not reply.usage.reported:
                # llama-cpp-python streams carry no usage: estimate so budgets and totals bind.
                reply_chars = len(reply.content) + sum(len(c.arguments) for c in reply.tool_calls)
                reply.usage = dataclasses.replace(
                    estimated_usage(sent_chars, reply_chars), requests=1
                )
            reply.usage = spent + reply.usage
            reply.max_tokens = int(request.get("max_tokens") or 0)
            if reply.finish_reason != "length" and _cut_tool_call(reply):
                # llama-cpp-python says "tool_calls" for arguments cut at the output limit.
                reply.finish_reason = "length"
            if is_local_endpoint(self.provider):
                _unescape_html(reply, prepared)
            self.total_usage = self.total_usage + reply.usage
            logger.debug(
                "%s %s role=%s attempt=%d %.2fs prompt=%d cached=%d completion=%d",
                self.provider.name,
                model,
                role,
                attempt,
                time.monotonic() - started,
                reply.usage.prompt_tokens,
                reply.usage.cached_tokens,
                reply.usage.completion_tokens,
            )
            return reply

    def reply_room(self, role: str) -> int:
        """The ``max_tokens`` every request of ``role`` carries (the context sizing's rule)."""
        return reply_tokens(role, self.provider.context_window or DEFAULT_WINDOW)

    async def learn_window(self) -> int:
        """The model's context window: configured, else what the server reports (asked once:
        ``/v1/models``, then llama.cpp's ``/props``), else the preset. ``provider`` afterwards
        says which in ``window_source``, and ``provider.context_window`` is what sizing reads."""
        if self._window_learned:
            return self.provider.context_window
        async with self._window_lock:
            if self._window_learned:
                return self.provider.context_window
            self._window_learned = True
            window, where = await self._server_window()
            if window:
                self.provider = dataclasses.replace(
                    self.provider, context_window=window, window_source=where
                )
                logger.info(
                    "%s: context window %d tokens from %s", self.provider.name, window, where
                )
        return self.provider.context_window

    async def _server_window(self) -> tuple[int | None, str]:
        model = self.provider.model_for("coder") or self._discovered_model or ""
        try:
            page = await self._models()
        except Exception:  # the window is optional; a failing /models shows up in the request
            logger.debug("%s: /models unavailable", self.provider.name, exc_info=True)
            page = None
        window = window_from_models(page, model)
        if window:
            return window, "server /v1/models"
        if not is_local_endpoint(self.provider):
            return None, ""
        root = self.provider.base_url.removesuffix("/v1")
        try:
            props = await self._client().get(f"{root}/props", cast_to=object)
        except Exception:
            return None, ""
        window = window_from_props(props)
        return (window, "server /props") if window else (None, "")

    async def _models(self) -> Any:
        if self._models_page is None:
            self._models_page = await self._client().get("/models", cast_to=object)
        return self._models_page

    async def aclose(self) -> None:
        if self._sdk is not None:
            await self._sdk.close()
            self._sdk = None

    # -- internals -------------------------------------------------------------------------
    def _client(self) -> openai.AsyncOpenAI:
        # The SDK's connection pool belongs to one event loop; a new loop gets a new client.
        loop = asyncio.get_running_loop()
        if self._sdk is None or self._sdk_loop is not loop:
            self._sdk = openai.AsyncOpenAI(
                base_url=self.provider.base_url,
                api_key=self.provider.api_key,
                max_retries=0,
                timeout=self.timeout,
            )
            self._sdk_loop = loop
        return self._sdk

    async def _model_for(self, role: str) -> str:
        model = self.provider.model_for(role)
        if model:
            return model
        if self._discovered_model is None:
            self._discovered_model = await self._discover_model()
        return self._discovered_model

    async def _discover_model(self) -> str:
        """A local server with no model configured: use the first one it lists."""
        try:
            page = await self._models()
        except Exception as exc:
            failure = classify_error(exc, self.provider)
            if failure is None:
                raise
            raise failure.final_error(1) from exc
        data = page.get("data") if isinstance(page, Mapping) else None
        ids = [str(m["id"]) for m in data or [] if isinstance(m, Mapping) and m.get("id")]
        if not ids:
            raise ModelError(
                "config",
                f"{self.provider.base_url} lists no models: set LSP_AGENT_MODEL or `model` "
                "in .lsp-agent.toml",
            )
        logger.info("%s: no model configured, using %s from /models", self.provider.name, ids[0])
        return ids[0]

    async def _attempt(self, request: dict[str, Any], use_stream: bool) -> ModelReply:
        if use_stream:
            return await self._streamed(request)
        response = await self._client().chat.completions.create(**request)
        if not getattr(response, "choices", None):
            # The SDK hands back a plain string for a non-JSON body (an HTML proxy page, a
            # base URL that is not the API root); JSON without choices is no better.
            sample = str(response)[:80] if isinstance(response, str) else "no choices"
            raise ModelError(
                "bad_output",
                f"{self.provider.name} at {self.provider.base_url} did not answer with a chat "
                f"completion ({sample!r}): check the base URL (OpenAI-compatible APIs end in /v1)",
            )
        choice = response.choices[0]
        message = choice.message
        usage_payload = response.usage.model_dump() if response.usage else None
        calls = [
            make_tool_call(call.id, call.function.name, call.function.arguments or "", i)
            for i, call in enumerate(message.tool_calls or [])
            if getattr(call, "function", None) is not None
        ]
        return self._reply(
            content=message.content or "",
            calls=calls,
            reasoning=reasoning_of(message),
            usage=usage_from_payload(usage_payload),
            finish_reason=choice.finish_reason or "",
        )

    async def _streamed(self, request: dict[str, Any]) -> ModelReply:
        assembler = StreamAssembler()
        stream = await self._client().chat.completions.create(**request)
        try:
            async for chunk in stream:
                assembler.absorb(chunk)
        except _transport.TimeoutException:
            raise  # a stall longer than the timeout: classified as a timeout, retried
        except _transport.TransportError as exc:
            raise _TruncatedStream(f"the stream broke: {_cause(exc)}") from exc
        finally:
            await stream.close()
        if assembler.finish_reason is None:
            raise _TruncatedStream(
                f"the stream ended without a finish_reason after {assembler.chunks} chunks"
            )
        return self._reply(
            content=assembler.content,
            calls=assembler.tool_calls(),
            reasoning=assembler.reasoning,
            usage=assembler.usage,
            finish_reason=assembler.finish_reason,
        )

    def _reply(
        self,
        *,
        content: str,
        calls: Sequence[ToolCall],
        reasoning: str | None,
        usage: Usage,
        finish_reason: str,
    ) -> ModelReply:
        return ModelReply(
            content=content,
            tool_calls=list(calls),
            reasoning_content=reasoning,
            usage=usage,
            finish_reason=finish_reason,
            provider=self.provider.name,
            echo_reasoning=self.provider.supports_reasoning_echo,
            omit_empty_tool_content=self.provider.drop_empty_tool_content,
        )


def _cut_tool_call(reply: ModelReply) -> bool:
    """Arguments that do not parse and a reply that used (nearly) all of its ``max_tokens``."""
    if not reply.max_tokens or not any(c.error for c in reply.tool_calls):
        return False
    produced = reply.usage.completion_tokens or estimate_tokens(
        len(reply.content) + sum(len(c.arguments) for c in reply.tool_calls)
    )
    return produced >= reply.max_tokens * 0.9


def _unescape_html(reply: ModelReply, sent: Sequence[Mapping[str, Any]]) -> None:
    """Some local servers HTML-escape the prompt (llama-cpp-python's chat templates), so the
    model copies ``-&gt;`` for ``->``. An entity the request never contained is undone."""
    text = reply.content + "".join(c.arguments for c in reply.tool_calls)
    found = set(_ENTITY.findall(text))
    if not found:
        return
    request_text = json.dumps(list(sent), ensure_ascii=False)
    foreign = {e for e in found if e not in request_text}
    if not foreign:
        return

    def undo(value: str) -> str:
        return _ENTITY.sub(lambda m: html.unescape(m[0]) if m[0] in foreign else m[0], value)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return undo(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    reply.content = undo(reply.content)
    for call in reply.tool_calls:
        if not any(e in call.arguments for e in foreign):
            continue
        if call.parsed is not None:  # undo inside the strings: a bare `"` would break the JSON
            call.parsed = walk(call.parsed)
            call.arguments = json.dumps(call.parsed, ensure_ascii=False)
        else:
            fixed = make_tool_call(call.id, call.name, undo(call.arguments), 0)
            call.arguments, call.parsed, call.error = fixed.arguments, fixed.parsed, fixed.error
