"""The agent loop: messages -> model -> tool calls executed -> results appended, until a submit.

Control flow is by exceptions, as in mini-swe-agent: a submit tool raises ``Submitted``; a hard
limit raises ``LimitsExceeded``; an agent that is stuck raises ``LoopDetected`` long before the
step cap (``StuckWatch``: the same failing call, the same successful call or the same text
repeated, replies without the tool call the role must make, replies cut at the output limit, or
no new successful call over a window of steps), with a message that says which.
The transcript is flushed in ``finally`` so cancellation and failures still leave a record.
Secrets: the history holds real text; each request sends a redacted copy (``redact.Redactor``)
and each reply is restored before anything uses it (tool arguments, plans, edits).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from lsp_agent.agents.pricing import price_for
from lsp_agent.agents.usage import (
    ModelError,
    ModelReply,
    ToolCall,
    Usage,
    assistant_message,
    estimated_usage,
)
from lsp_agent.config import BudgetSettings, Settings
from lsp_agent.redact import Redactor, clip

if TYPE_CHECKING:
    from lsp_agent.agents.client import ModelClient
    from lsp_agent.agents.fit import RequestSizer
    from lsp_agent.agents.tools import Tool
    from lsp_agent.agents.transcript import Transcript

LOOP_LIMIT = 3  # identical failing tool calls before the agent is stopped
REPEAT_LIMIT = 3  # the same successful call, or the same reply text, this often: stuck
NO_TOOL_LIMIT = 3  # replies in a row without a tool call from a role that must call one
CUT_LIMIT = 3  # replies in a row cut off at the output limit
PROGRESS_WINDOW = 8  # steps in a row without a new successful tool call
# Budget estimates before the task's first reported usage calibrates them (conservative:
# ~5 characters a token on code, 4 here), and per message for the chat template's markers.
CHARS_PER_TOKEN_GUESS = 1 / 4
REPLY_ALLOWANCE = 4_096  # a role's reply before it has given one
MESSAGE_TOKENS = 8


class ToolError(Exception):
    """A tool call the model must correct; the message goes back to it as the tool result."""


class Submitted(Exception):
    def __init__(self, payload: Any) -> None:
        super().__init__("submitted")
        self.payload = payload


class LimitsExceeded(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "steps" | "tokens" | "time" | "review_rounds"


class LoopDetected(Exception):
    """The agent is stuck; ``kind`` says how (the message says it in words)."""

    def __init__(self, message: str, kind: str = "failing_call") -> None:
        super().__init__(message)
        self.kind = kind  # failing_call | repeated_call | repeated_text | no_tool_call | cut | ...


class StuckWatch:
    """What one agent has done, to tell a stuck agent from a working one (``Agent.run``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.replies_without_tools = 0
        self.tool_calls = 0
        self.cut_in_a_row = 0
        self.steps_without_progress = 0
        self.successes: Counter[str] = Counter()
        self.texts: Counter[str] = Counter()

    def reply(self, reply: ModelReply, must_call: str) -> None:
        text = " ".join(reply.content.split())
        if text:
            self.texts[text] += 1
            if self.texts[text] >= REPEAT_LIMIT:
                raise LoopDetected(
                    f"{self.name} sent the same reply {self.texts[text]} times: {text[:160]!r}",
                    "repeated_text",
                )
        self.cut_in_a_row = self.cut_in_a_row + 1 if reply.finish_reason == "length" else 0
        if self.cut_in_a_row >= CUT_LIMIT:
            raise LoopDetected(
                f"{self.name}'s replies were cut off at the output limit ({reply.max_tokens} "
                f"tokens) {self.cut_in_a_row} times in a row; nothing in them was acted on",
                "cut",
            )
        if reply.tool_calls:
            self.replies_without_tools = 0
            self.tool_calls += len(reply.tool_calls)
            return
        self.replies_without_tools += 1
        if self.replies_without_tools >= NO_TOOL_LIMIT:
            ever = "" if self.tool_calls else " and has not called any tool so far"
            raise LoopDetected(
                f"{self.name} answered {self.replies_without_tools} times in a row without a "
                f"tool call{ever} (it must call {must_call}); if the model never calls tools, "
                "it may not support tool calls, or the server may ignore them",
                "no_tool_call",
            )

    def progress(self, made: bool) -> None:
        self.steps_without_progress = 0 if made else self.steps_without_progress + 1
        if self.steps_without_progress >= PROGRESS_WINDOW:
            raise LoopDetected(
                f"{self.name} made no progress in {self.steps_without_progress} steps (no "
                "tool call that succeeded with new arguments)",
                "no_progress",
            )

    def success(self, call: ToolCall) -> bool:
        """Record a successful call; True when it was new (progress)."""
        key = f"{call.name}({_canonical(call)})"
        self.successes[key] += 1
        if self.successes[key] >= REPEAT_LIMIT:
            raise LoopDetected(
                f"{self.name} made the same call {self.successes[key]} times: {key[:200]}",
                "repeated_call",
            )
        return self.successes[key] == 1


class Budget:
    """Limits shared by every agent of one task: total tokens and wall clock.

    Tokens measure spend: a prompt token the provider's cache served counts at ``cached_weight``
    (its price ratio), the rest in full. Parallel agents share the budget through reservations:
    each request reserves an estimate before it is sent (``reserve``) and the estimate is
    replaced by the reported usage when it returns. A request is sent only while the spent and
    reserved tokens leave room for its estimate, or when nothing else is in flight (that one may
    overrun), so a task overruns its budget by at most one request as long as the estimates
    hold; a request that does not fit waits for those in flight and then fits or ends the task.
    """

    def __init__(
        self,
        settings: BudgetSettings,
        *,
        cached_weight: Callable[[str, str], float] | None = None,  # (provider, model) -> weight
    ) -> None:
        self.settings = settings
        self.started = time.monotonic()
        self.usage = Usage()
        self.estimated = 0  # tokens of replies whose server reported no usage (some local servers)
        self.charged = 0.0  # reported usage, cached prompt tokens at their weight
        self.reserved = 0  # estimates of the requests in flight
        self.peak = 0  # most tokens spent + reserved at any moment (a measure, for tests/bench)
        fixed = settings.cached_token_weight
        self._weight = cached_weight or (lambda _provider, _model: fixed or 1.0)
        self._tokens_per_char = CHARS_PER_TOKEN_GUESS  # raised to the worst ratio reported
        self._reply_allowance: dict[str, int] = {}  # role -> largest reply seen in this task
        self._sent: set[int] = set()  # chained hashes of every message prefix sent so far
        self._waiters: list[asyncio.Future[None]] = []

    @classmethod
    def for_settings(cls, settings: Settings) -> Budget:
        """The task budget: cached tokens weighted by ``budgets.cached_token_weight``, or when
        that is 0 by the model's price ratio (``pricing.price_for``; 1.0 when unpriced)."""
        fixed = settings.budgets.cached_token_weight

        def weight(provider: str, model: str) -> float:
            if fixed > 0:
                return fixed
            price = price_for(settings, provider, model) if model else None
            return 1.0 if price is None else price.cached_weight

        return cls(settings.budgets, cached_weight=weight)

    @property
    def tokens(self) -> int:
        return int(self.charged) + self.estimated

    def charge(
        self,
        usage: Usage,
        *,
        sent_chars: int = 0,
        reply_chars: int = 0,
        provider: str = "",
        model: str = "",
        role: str = "",
    ) -> None:
        self.usage = self.usage + usage
        if usage.prompt_tokens + usage.completion_tokens == 0:
            # No usage reported: estimate (~4 characters a token) so the budget still binds.
            self.estimated += (sent_chars + reply_chars) // 4
            return
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        weight = min(max(self._weight(provider, model), 0.0), 1.0)
        self.charged += usage.prompt_tokens - cached + cached * weight + usage.completion_tokens
        if sent_chars and usage.prompt_tokens:
            self._tokens_per_char = max(self._tokens_per_char, usage.prompt_tokens / sent_chars)
        if role:
            previous = self._reply_allowance.get(role, 0)
            self._reply_allowance[role] = max(previous, usage.completion_tokens)

    def check(self) -> None:
        if self.tokens >= self.settings.max_tokens:
            raise LimitsExceeded(
                "tokens", f"token budget exhausted: {self.tokens} of {self.settings.max_tokens}"
            )
        elapsed = time.monotonic() - self.started
        if elapsed >= self.settings.max_seconds:
            raise LimitsExceeded(
                "time", f"time budget exhausted: {elapsed:.1f} s of {self.settings.max_seconds} s"
            )

    def estimate(
        self,
        role: str,
        messages: Sequence[dict[str, Any]],
        *,
        extra_chars: int = 0,
        provider: str = "",
        model: str = "",
    ) -> int:
        """Tokens a request will be charged: its prompt (the leading messages an earlier
        request of this task already sent count as cached) plus the largest reply this role
        gave so far (``REPLY_ALLOWANCE`` before the first)."""
        chain, cached_chars, total_chars = 0, 0, 0
        prefix_open = True
        for message in messages:
            text = _message_text(message)
            chain = hash((chain, message.get("role"), text))
            total_chars += len(text)
            if prefix_open and chain in self._sent:
                cached_chars = total_chars
            else:
                prefix_open = False
        weight = min(max(self._weight(provider, model), 0.0), 1.0)
        uncached = total_chars - cached_chars + extra_chars
        prompt = (uncached + cached_chars * weight) * self._tokens_per_char
        reply = self._reply_allowance.get(role) or REPLY_ALLOWANCE
        return int(prompt) + reply + MESSAGE_TOKENS * len(messages)

    def remember(self, messages: Sequence[dict[str, Any]]) -> None:
        """Record the messages of a request as sent (their prefixes are cached from now on)."""
        chain = 0
        for message in messages:
            chain = hash((chain, message.get("role"), _message_text(message)))
            self._sent.add(chain)

    @contextlib.asynccontextmanager
    async def reserve(self, estimate: Callable[[], int]) -> AsyncIterator[int]:
        """Hold ``estimate()`` tokens for one request (asked again after every wait: replies
        meanwhile sharpen it); released when the block ends. Charge the reply inside the block,
        so the spent tokens replace the estimate at once. Yields the estimate held."""
        while True:
            self.check()
            held = estimate()
            if not self.reserved or self.tokens + self.reserved + held <= self.settings.max_tokens:
                break
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.reserved += held
        self.peak = max(self.peak, self.tokens + self.reserved)
        try:
            yield held
        finally:
            self.reserved -= held
            self.peak = max(self.peak, self.tokens + self.reserved)
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    text = content if isinstance(content, str) else json.dumps(content)
    if message.get("tool_calls"):
        text += json.dumps(message["tool_calls"], sort_keys=True)
    return text


class Agent:
    """One role's conversation. ``step`` is one model turn; ``run`` loops until a submit tool."""

    def __init__(
        self,
        *,
        role: str,
        name: str,
        client: ModelClient,
        messages: list[dict[str, Any]],
        budget: Budget,
        transcript: Transcript,
        tools: Sequence[Tool] = (),
        redactor: Redactor | None = None,
        sizer: RequestSizer | None = None,
    ) -> None:
        self.role, self.name, self.client = role, name, client
        self.sizer = sizer  # fits every request into the window (fit.py); None = unsized
        self.redactor = redactor if redactor is not None else Redactor()
        self.messages = messages
        self.budget, self.transcript = budget, transcript
        self.tools = {tool.name: tool for tool in tools}
        self.steps = 0
        self._logged = 0
        self._failures: Counter[tuple[str, str]] = Counter()
        self.watch = StuckWatch(name)

    def add_user(self, content: str) -> None:
        self.messages.append({"role": "user", "content": content})

    async def step(self) -> ModelReply:
        if self.steps >= self.budget.settings.max_steps:
            raise LimitsExceeded(
                "steps", f"{self.name} used all {self.budget.settings.max_steps} steps"
            )
        self.budget.check()
        self.steps += 1
        self.transcript.messages(self.name, self.messages[self._logged :], start=self._logged)
        self._logged = len(self.messages)
        schemas = [tool.schema() for tool in self.tools.values()] or None
        # The one place messages leave for a model: deterministic placeholders keep messages 0
        # and 1 byte-identical; the reply is restored so plans and edits hold the real values.
        outgoing = self.redactor.redact_messages(self.messages)
        options: dict[str, Any] = {}
        if self.sizer is not None:
            # Counting a large prefix the first time is CPU work: off the loop.
            record = await asyncio.to_thread(
                self.sizer.fit,
                agent=self.name,
                role=self.role,
                step=self.steps,
                history=self.messages,
                outgoing=outgoing,
                tools=schemas,
            )
            options["max_tokens"] = record.max_tokens
            self.transcript.event("request", **record.to_json())
        config = getattr(self.client, "provider", None)
        provider = getattr(config, "name", "")
        model = config.model_for(self.role) if hasattr(config, "model_for") else ""
        schema_chars = len(json.dumps(schemas)) if schemas else 0

        def estimate() -> int:
            return self.budget.estimate(
                self.role, outgoing, extra_chars=schema_chars, provider=provider, model=model
            )

        async with self.budget.reserve(estimate) as held:
            started = time.monotonic()
            self.budget.remember(outgoing)
            try:
                answer = await self.client.complete(
                    role=self.role, messages=outgoing, tools=schemas, options=options or None
                )
            except ModelError as exc:
                # Failed attempts still cost what the server read: totals count every attempt.
                self.budget.charge(exc.usage, provider=provider, model=model)
                self.transcript.event(
                    "model_error",
                    agent=self.name,
                    step=self.steps,
                    error_kind=exc.kind,
                    error=exc.message,
                    usage=exc.usage.to_json(),
                )
                raise
            except asyncio.CancelledError:
                # The server read the prompt of the request cancelled under it: an estimate.
                usage = estimated_usage(schema_chars + sum(len(_message_text(m)) for m in outgoing))
                self.budget.charge(usage, provider=provider, model=model)
                self.transcript.event(
                    "cancelled_request", agent=self.name, step=self.steps, usage=usage.to_json()
                )
                raise
            reply = self.redactor.restore_reply(answer)
            self.budget.charge(
                reply.usage,
                sent_chars=schema_chars + sum(len(_message_text(m)) for m in outgoing),
                reply_chars=len(reply.content) + sum(len(c.arguments) for c in reply.tool_calls),
                provider=reply.provider or provider,
                model=reply.model or model,
                role=self.role,
            )
        self.transcript.event(
            "reply",
            agent=self.name,
            step=self.steps,
            seconds=round(time.monotonic() - started, 4),
            content=reply.content,
            tool_calls=[{"name": c.name, "arguments": c.arguments} for c in reply.tool_calls],
            finish_reason=reply.finish_reason,
            usage=reply.usage.to_json(),
            estimate=held,
        )
        self.messages.append(assistant_message(reply))
        self._logged = len(self.messages)
        return reply

    async def run(self, nudge: str, *, must_call: str = "a tool") -> Any:
        """Loop until a submit tool returns its payload; ``nudge`` answers a turn without tools.
        ``must_call`` names the tool the role must end with, for the stuck messages."""
        try:
            while True:
                reply = await self.step()
                self.watch.reply(reply, must_call)
                if reply.finish_reason == "length":
                    self._cut(reply)
                    self.watch.progress(False)
                    continue
                if not reply.tool_calls:
                    self.add_user(nudge)
                    self.watch.progress(False)
                    continue
                progress = False
                for position, call in enumerate(reply.tool_calls):
                    try:
                        progress = await self._execute(call) or progress
                    except Submitted as done:
                        self._tool_result(call, "submitted", error=False)
                        for rest in reply.tool_calls[position + 1 :]:
                            self._tool_result(rest, "skipped: already submitted", error=False)
                        return done.payload
                self.watch.progress(progress)
        finally:
            self.transcript.flush()

    def _cut(self, reply: ModelReply) -> None:
        """A reply cut at the output limit is never acted on: its calls may be incomplete."""
        for call in reply.tool_calls:
            self._tool_result(call, "not run: your reply was cut off before it ended", error=True)
        limit = f" of {reply.max_tokens} tokens" if reply.max_tokens else ""
        self.add_user(
            f"Your last reply was cut off at the output limit{limit}, so nothing in it was "
            "acted on. Answer again, much shorter: no explanations, one tool call with short "
            "arguments."
        )

    async def _execute(self, call: ToolCall) -> bool:
        """Run one call; True when it succeeded with arguments not seen before (progress)."""
        tool = self.tools.get(call.name)
        if call.error is not None or call.parsed is None:
            result = f"invalid arguments for {call.name}: {call.error or 'not a JSON object'}"
            self._failed(call, result + "; send the call again with valid JSON")
            return False
        if tool is None:
            self._failed(call, f"unknown tool {call.name!r}; use one of {list(self.tools)}")
            return False
        try:
            output = await asyncio.to_thread(tool.handler, dict(call.parsed))
        except ToolError as exc:
            self._failed(call, str(exc))
            return False
        if self.sizer is not None:  # one result never takes more than its share of the window
            output = await asyncio.to_thread(self.sizer.cap_result, output, self._clip)
        self._tool_result(call, output, error=False)
        return self.watch.success(call)

    def _clip(self, text: str, limit: int) -> str:
        return clip(self.redactor.redact(text), limit)

    def _failed(self, call: ToolCall, message: str) -> None:
        self._tool_result(call, f"error: {message}", error=True)
        key = (call.name, _canonical(call))
        self._failures[key] += 1
        if self._failures[key] >= LOOP_LIMIT:
            raise LoopDetected(
                f"{self.name} repeated the same failing call {call.name}({call.arguments[:200]}) "
                f"{LOOP_LIMIT} times: {message}",
                "failing_call",
            )

    def _tool_result(self, call: ToolCall, content: str, *, error: bool) -> None:
        self.messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
        self.transcript.event("tool", agent=self.name, name=call.name, error=error, result=content)


def _canonical(call: ToolCall) -> str:
    if call.parsed is not None:
        return json.dumps(call.parsed, sort_keys=True)
    return call.arguments.strip()
