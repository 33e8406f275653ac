"""Fitting each request into its window, and the per-request manifest that says what went in.

``RequestSizer.fit`` runs before every model call (``Agent.step``). It counts the request as
sent (redacted) with the provider's tokenizer (``context.tokens.tokenizer_for``), and when the
prompt passes ``sizing.prompt_limit`` for the role it makes room, in this order:

1. older tool results are elided, oldest first, the newest last. An elided result is replaced in
   the conversation itself by a fixed stub, so every later request carries the same bytes and
   the provider's prefix cache still hits up to it;
2. the snapshot prefix (message 1) is cut at a file block boundary from its end (still a byte
   prefix of the stable one);
3. if the task message alone (task, plan, the current file) does not fit, the request is not
   sent: ``LimitsExceeded("window")`` says how large it is and what the window leaves.

Never elided: the system prompt, the task message, assistant turns and user feedback.
Each request leaves a ``RequestRecord``: sections and their tokens, files carried in full more
than once (duplicated tokens), elisions, and the share a prefix cache can be expected to serve.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lsp_agent.agents import sizing
from lsp_agent.agents.loop import LimitsExceeded
from lsp_agent.context.tokens import tokenizer_for

ELIDED = (
    "[elided to keep the request within the model's context window: this result was "
    "{tokens:,} tokens. Call the tool again, narrower, if you still need it.]"
)
BLOCK_START = "\n=== "  # render.header: every file block of the snapshot starts so
MIN_DUPLICATE_CHARS = 200  # shorter texts repeat by chance (an __init__.py, a license line)
_COUNT_CACHE = 4096


@dataclass
class RequestRecord:
    """The manifest of one request: why it is as large as it is."""

    agent: str
    role: str
    step: int
    window: int
    max_tokens: int
    limit: int  # most prompt tokens allowed, as counted with ``tokenizer``
    tokenizer: str
    prompt_tokens: int
    sections: dict[str, int]
    messages: int
    elided_results: int = 0  # tool results elided in this conversation so far
    elided_tokens: int = 0
    prefix_cut_tokens: int = 0
    duplicated_tokens: int = 0  # tokens of full-file copies beyond the first
    duplicated_files: list[str] = field(default_factory=list)
    cached_tokens: int = 0  # leading messages sent byte-identical earlier in the task
    files: list[str] = field(default_factory=list)  # files carried in full (task files only)

    @property
    def expected_cached_share(self) -> float:
        return round(self.cached_tokens / self.prompt_tokens, 4) if self.prompt_tokens else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["expected_cached_share"] = self.expected_cached_share
        return data


class RequestSizer:
    """One per task: shared by its agents, so the cache estimate sees every request sent."""

    def __init__(
        self,
        window: int,
        family: str = "",
        *,
        counter: tuple[str, Callable[[str], int]] | None = None,
    ) -> None:
        self.window = window
        self.family = family
        self.tokenizer, self._count = counter or tokenizer_for(family)
        self._counts: dict[str, int] = {}
        self._sent: set[bytes] = set()  # chain hashes of message prefixes already sent
        # id(message) -> (message, its tokens before elision); the message is kept so its id
        # is never reused while the record stands.
        self._elided: dict[int, tuple[dict[str, Any], int]] = {}
        self._lock = threading.Lock()
        self.records: list[RequestRecord] = []
        self.files: dict[str, str] = {}  # path -> full text of the task's files (duplicates)

    @property
    def result_tokens(self) -> int:
        """The cap on one tool result: a third of the conversation's room, so the newest
        result always fits beside the task message once older ones are elided."""
        return max(256, sizing.conversation_room(self.window) // 3)

    def cap_result(self, text: str, clip: Callable[[str, int], str]) -> str:
        """``text`` cut (by ``clip``, which redacts before cutting) to ``result_tokens``."""
        cap = self.result_tokens
        tokens = self.count(text)
        original, keep = text, len(text)
        while tokens > cap and keep > 0:
            keep = max(0, int(keep * cap / tokens * 0.95) - 100)
            text = clip(original, keep) + "\n... (cut to fit the context window; ask for less)"
            tokens = self.count(text)
        return text

    def reply(self, role: str) -> int:
        return sizing.reply_tokens(role, self.window)

    def limit(self, role: str) -> int:
        return sizing.prompt_limit(
            role, self.window, tokenizer=self.tokenizer, provider=self.family
        )

    def count(self, text: str) -> int:
        if not text:
            return 0
        cached = self._counts.get(text)
        if cached is None:
            cached = self._count(text)
            with self._lock:
                if len(self._counts) >= _COUNT_CACHE:
                    self._counts.clear()
                self._counts[text] = cached
        return cached

    def message_tokens(self, message: Mapping[str, Any]) -> int:
        total = sizing.MESSAGE_OVERHEAD
        for key in ("content", "reasoning_content"):
            value = message.get(key)
            if isinstance(value, str):
                total += self.count(value)
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            total += self.count(str(function.get("name", ""))) + self.count(
                str(function.get("arguments", ""))
            )
        return total

    def tools_tokens(self, tools: Sequence[Mapping[str, Any]] | None) -> int:
        return self.count(json.dumps(list(tools), sort_keys=True)) if tools else 0

    # -- fitting --------------------------------------------------------------------------------

    def fit(
        self,
        *,
        agent: str,
        role: str,
        step: int,
        history: list[dict[str, Any]],
        outgoing: list[dict[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> RequestRecord:
        """Make ``outgoing`` (the redacted copy of ``history``) fit; elisions and cuts are made
        in both, so the conversation keeps them. Returns the request's record."""
        limit = self.limit(role)
        counts = [self.message_tokens(m) for m in outgoing]
        fixed = self.tools_tokens(tools)
        elided_now = 0
        if sum(counts) + fixed > limit:
            tool_rows = [i for i, m in enumerate(history) if m.get("role") == "tool"]
            for i in tool_rows:
                if sum(counts) + fixed <= limit:
                    break
                if id(history[i]) in self._elided:
                    continue
                stub = ELIDED.format(tokens=counts[i])
                self._elided[id(history[i])] = (history[i], counts[i])
                history[i]["content"] = stub
                outgoing[i] = {**outgoing[i], "content": stub}
                counts[i] = self.message_tokens(outgoing[i])
                elided_now += 1
        cut = 0
        if sum(counts) + fixed > limit and len(outgoing) > 1:
            cut = self._cut_prefix(history, outgoing, counts, limit - fixed)
        total = sum(counts) + fixed
        if total > limit:
            task_tokens = counts[2] if len(counts) > 2 else 0
            raise LimitsExceeded(
                "window",
                f"{agent}'s request needs {total:,} prompt tokens, but a {self.window:,}-token "
                f"window leaves {limit:,} after the reply ({self.reply(role):,}) and the tokenizer "
                f"margin; its task message alone (task, plan, file) is {task_tokens:,} tokens",
            )
        record = RequestRecord(
            agent=agent,
            role=role,
            step=step,
            window=self.window,
            max_tokens=self.reply(role),
            limit=limit,
            tokenizer=self.tokenizer,
            prompt_tokens=total,
            sections=_sections(history, counts, fixed),
            messages=len(outgoing),
            elided_results=sum(1 for m in history if id(m) in self._elided),
            elided_tokens=sum(self._elided[id(m)][1] for m in history if id(m) in self._elided),
            prefix_cut_tokens=cut,
        )
        self._duplicates(record, history)
        record.cached_tokens = self._cached(outgoing, counts)
        with self._lock:
            self.records.append(record)
        return record

    def _cut_prefix(
        self,
        history: list[dict[str, Any]],
        outgoing: list[dict[str, Any]],
        counts: list[int],
        limit: int,
    ) -> int:
        """Cut message 1 (the snapshot prefix) at block boundaries from its end until the
        request fits; returns the tokens removed."""
        text = str(outgoing[1].get("content") or "")
        before = counts[1]
        while sum(counts) > limit and text:
            over = sum(counts) - limit
            share = min(1.0, (over * 1.1 + 64) / max(counts[1], 1))
            target = int(len(text) * (1 - share))
            at = text.rfind(BLOCK_START, 0, max(target, 0))
            text = text[: at + 1] if at > 0 else ""
            note = "\n(the rest of the snapshot was cut to fit the context window)\n"
            content = text + note if text else note
            outgoing[1] = {**outgoing[1], "content": content}
            history[1] = {**history[1], "content": content}
            counts[1] = self.message_tokens(outgoing[1])
        return max(0, before - counts[1])

    def _duplicates(self, record: RequestRecord, history: list[dict[str, Any]]) -> None:
        contents = [str(m.get("content") or "") for m in history]
        for path, text in sorted(self.files.items()):
            if len(text) < MIN_DUPLICATE_CHARS:
                continue
            copies = sum(c.count(text) for c in contents)
            if copies:
                record.files.append(path)
            if copies > 1:
                record.duplicated_files.append(path)
                record.duplicated_tokens += (copies - 1) * self.count(text)

    def _cached(self, outgoing: list[dict[str, Any]], counts: list[int]) -> int:
        """Tokens of the leading messages some earlier request of the task sent identically."""
        chain = hashlib.sha256()
        cached, hit = 0, True
        new: list[bytes] = []
        for message, tokens in zip(outgoing, counts, strict=True):
            chain.update(json.dumps(message, sort_keys=True, default=str).encode())
            key = chain.copy().digest()
            if hit and key in self._sent:
                cached += tokens
            else:
                hit = False
            new.append(key)
        with self._lock:
            self._sent.update(new)
        return cached


def _sections(history: list[dict[str, Any]], counts: list[int], tools: int) -> dict[str, int]:
    out = {"system": 0, "snapshot": 0, "task": 0, "tool_results": 0, "assistant": 0}
    out.update(feedback=0, tools=tools)
    for i, (message, tokens) in enumerate(zip(history, counts, strict=True)):
        role = message.get("role")
        if i == 0 and role == "system":
            out["system"] += tokens
        elif i == 1:
            out["snapshot"] += tokens
        elif i == 2:
            out["task"] += tokens
        elif role == "tool":
            out["tool_results"] += tokens
        elif role == "assistant":
            out["assistant"] += tokens
        else:
            out["feedback"] += tokens
    return out
