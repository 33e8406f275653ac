"""The agent loop: messages -> model -> tool calls executed -> results appended, until a submit.

Control flow is by exceptions, as in mini-swe-agent: a submit tool raises ``Submitted``; a hard
limit raises ``LimitsExceeded``; the same failing tool call three times raises ``LoopDetected``.
The transcript is flushed in ``finally`` so cancellation and failures still leave a record.
Secrets: the history holds real text; each request sends a redacted copy (``redact.Redactor``)
and each reply is restored before anything uses it (tool arguments, plans, edits).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lsp_agent.agents.usage import ModelReply, ToolCall, Usage, assistant_message
from lsp_agent.config import BudgetSettings
from lsp_agent.redact import Redactor

if TYPE_CHECKING:
    from lsp_agent.agents.client import ModelClient
    from lsp_agent.agents.tools import Tool
    from lsp_agent.agents.transcript import Transcript

LOOP_LIMIT = 3  # identical failing tool calls before the agent is stopped


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
    pass


class Budget:
    """Limits shared by every agent of one task: total tokens and wall clock."""

    def __init__(self, settings: BudgetSettings) -> None:
        self.settings = settings
        self.started = time.monotonic()
        self.usage = Usage()
        self.estimated = 0  # tokens of replies whose server reported no usage (some local servers)

    @property
    def tokens(self) -> int:
        return self.usage.prompt_tokens + self.usage.completion_tokens + self.estimated

    def charge(self, usage: Usage, *, sent_chars: int = 0, reply_chars: int = 0) -> None:
        self.usage = self.usage + usage
        if usage.prompt_tokens + usage.completion_tokens == 0:
            # No usage reported: estimate (~4 characters a token) so the budget still binds.
            self.estimated += (sent_chars + reply_chars) // 4

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
    ) -> None:
        self.role, self.name, self.client = role, name, client
        self.redactor = redactor if redactor is not None else Redactor()
        self.messages = messages
        self.budget, self.transcript = budget, transcript
        self.tools = {tool.name: tool for tool in tools}
        self.steps = 0
        self._logged = 0
        self._failures: Counter[tuple[str, str]] = Counter()

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
        started = time.monotonic()
        # The one place messages leave for a model: deterministic placeholders keep messages 0
        # and 1 byte-identical; the reply is restored so plans and edits hold the real values.
        outgoing = self.redactor.redact_messages(self.messages)
        reply = self.redactor.restore_reply(
            await self.client.complete(role=self.role, messages=outgoing, tools=schemas)
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
        )
        self.budget.charge(
            reply.usage,
            sent_chars=sum(len(str(m.get("content") or "")) for m in self.messages),
            reply_chars=len(reply.content) + sum(len(c.arguments) for c in reply.tool_calls),
        )
        self.messages.append(assistant_message(reply))
        self._logged = len(self.messages)
        return reply

    async def run(self, nudge: str) -> Any:
        """Loop until a submit tool returns its payload; ``nudge`` answers a turn without tools."""
        try:
            while True:
                reply = await self.step()
                if not reply.tool_calls:
                    self.add_user(nudge)
                    continue
                for position, call in enumerate(reply.tool_calls):
                    try:
                        await self._execute(call)
                    except Submitted as done:
                        self._tool_result(call, "submitted", error=False)
                        for rest in reply.tool_calls[position + 1 :]:
                            self._tool_result(rest, "skipped: already submitted", error=False)
                        return done.payload
        finally:
            self.transcript.flush()

    async def _execute(self, call: ToolCall) -> None:
        tool = self.tools.get(call.name)
        if call.error is not None or call.parsed is None:
            result = f"invalid arguments for {call.name}: {call.error or 'not a JSON object'}"
            return self._failed(call, result + "; send the call again with valid JSON")
        if tool is None:
            return self._failed(call, f"unknown tool {call.name!r}; use one of {list(self.tools)}")
        try:
            output = await asyncio.to_thread(tool.handler, dict(call.parsed))
        except ToolError as exc:
            return self._failed(call, str(exc))
        self._tool_result(call, output, error=False)

    def _failed(self, call: ToolCall, message: str) -> None:
        self._tool_result(call, f"error: {message}", error=True)
        key = (call.name, _canonical(call))
        self._failures[key] += 1
        if self._failures[key] >= LOOP_LIMIT:
            raise LoopDetected(
                f"{self.name} repeated the same failing call {call.name}({call.arguments[:200]}) "
                f"{LOOP_LIMIT} times: {message}"
            )

    def _tool_result(self, call: ToolCall, content: str, *, error: bool) -> None:
        self.messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
        self.transcript.event("tool", agent=self.name, name=call.name, error=error, result=content)


def _canonical(call: ToolCall) -> str:
    if call.parsed is not None:
        return json.dumps(call.parsed, sort_keys=True)
    return call.arguments.strip()
