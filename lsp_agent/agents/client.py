"""The model client: the only module in lsp-agent that imports the ``openai`` SDK.

``OpenAIChatClient`` talks to any OpenAI-compatible chat-completions endpoint. The SDK's own
retries are off (``max_retries=0``): this module retries itself so that it can honour
``Retry-After``/``retry-after-ms``, treat a stream that stops without a ``finish_reason`` as a
dropped connection, keep the concurrency slot free while it sleeps, and end with a
``ModelError`` whose message says what happened and what to check.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
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
    make_tool_call,
    reasoning_of,
    usage_from_payload,
)
from lsp_agent.config import Settings

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
    if provider.api_key and provider.api_key != LOCAL_PLACEHOLDER_KEY:
        text = text.replace(provider.api_key, "***")  # some servers echo the key back
    return text


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
        self.total_usage = Usage()

    @classmethod
    def from_settings(
        cls, settings: Settings, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> OpenAIChatClient:
        model = settings.model
        kwargs.setdefault("concurrency", model.concurrency)
        kwargs.setdefault("timeout", model.timeout_s)
        kwargs.setdefault("max_retries", model.max_retries)
        return cls(resolve_provider(settings, env), **kwargs)

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
        request: dict[str, Any] = {
            "model": model,
            "messages": prepare_messages(messages, self.provider),
            # The reply's room is part of the window's sizing (sizing.py): always sent.
            "max_tokens": reply_tokens(role, self.provider.context_window or DEFAULT_WINDOW),
            **dict(options or {}),
        }
        if tools:
            request["tools"] = tools
        if self.provider.extra_body:
            request["extra_body"] = dict(self.provider.extra_body)
        if use_stream:
            request["stream"] = True
            request["stream_options"] = {"include_usage": True}

        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                async with self._semaphore:
                    reply = await self._attempt(request, use_stream)
            except ModelError:
                raise
            except Exception as exc:
                failure = classify_error(exc, self.provider)
                if failure is None:
                    raise
                if not failure.retryable or attempt > self.policy.max_retries:
                    raise failure.final_error(attempt) from exc
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
            page = await self._client().models.list()
        except Exception as exc:
            failure = classify_error(exc, self.provider)
            if failure is None:
                raise
            raise failure.final_error(1) from exc
        ids = [m.id for m in page.data]
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
