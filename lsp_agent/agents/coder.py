"""A coder: one per target file. Replies in SEARCH/REPLACE blocks; applies them in memory.

Every reply is checked before it counts: the blocks must parse, name this coder's file, apply
(``edits.apply_blocks``) and introduce no new syntax error (``validator``). A reply without
blocks counts only when it declines the file with the ``NO CHANGES NEEDED`` line
(``edits.decline_reason``); prose, a file echoed in a fence or an empty reply is a format error.
A failure goes back to the same coder with the reason and the applier's hint, and the file stays
as it was before that reply. After ``BudgetSettings.apply_rounds`` such rounds the task ends
(``LimitsExceeded``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from lsp_agent.agents.loop import Agent, LimitsExceeded
from lsp_agent.agents.roles import Plan, RoleContext, Target, base_messages, render, task_message
from lsp_agent.agents.validator import describe, new_syntax_errors
from lsp_agent.edits import (
    DECLINE_STATEMENT,
    ApplyError,
    EditBlock,
    apply_blocks_detailed,
    decline_reason,
    parse_edit_blocks,
    unified_diff,
)

log = logging.getLogger(__name__)


@dataclass
class CoderResult:
    target: Target
    original: str
    text: str  # after every accepted reply
    exists: bool  # False: the plan creates this file
    blocks: list[EditBlock] = field(default_factory=list)  # accepted blocks, in apply order
    # The coder's reason when its last pass declined the file (NO CHANGES NEEDED); else None.
    declined: str | None = None

    @property
    def changed(self) -> bool:
        return self.text != self.original


def file_section(
    path: str, text: str, heading: str = "Current content of", shown: str | None = None
) -> str:
    """The file for a coder: in full, unless the snapshot already shows this very text in full
    (``shown`` is the sha256 it shows): then a reference, so the request carries one copy."""
    if text and shown is not None and hashlib.sha256(text.encode()).hexdigest() == shown:
        return (
            f"# {heading} {path}\n\nThe current text of {path} is the `=== {path} ===` block "
            "shown in full above (in the workspace snapshot); it is unchanged since. Your "
            "SEARCH blocks must match that text exactly."
        )
    if not text:
        return f"# {heading} {path}\n\n(the file is empty or does not exist yet)"
    fence = "````" if "```" in text else "```"
    body = text if text.endswith("\n") else text + "\n"
    return f"# {heading} {path}\n\n{fence}\n{body}{fence}"


def coder_message(
    task: str, tail: str, plan: Plan, target: Target, original: str, shown: str | None
) -> str:
    """A coder's task message (message 2): its role, the task, the plan, its instructions and
    its file (a reference to the snapshot's copy when ``shown`` is that text's sha256). The
    coder sends it and the dry run (``orchestrator.plan_task``) counts it."""
    return task_message(
        render("coder", path=target.path),
        task,
        tail,
        plan.to_text(),
        f"# Your instructions for {target.path}\n\n{target.instructions}",
        file_section(target.path, original, shown=shown),
    )


class Coder:
    def __init__(
        self,
        ctx: RoleContext,
        plan: Plan,
        target: Target,
        original: str,
        *,
        exists: bool,
        name: str,
    ) -> None:
        self.ctx = ctx
        self.result = CoderResult(target, original, original, exists)
        text = coder_message(
            ctx.task, ctx.tail, plan, target, original, ctx.shown_in_full.get(target.path)
        )
        messages = base_messages(ctx.prefix)
        messages.append({"role": "user", "content": text})
        self.agent = Agent(
            role="coder",
            name=name,
            client=ctx.client,
            messages=messages,
            budget=ctx.budget,
            transcript=ctx.transcript,
            redactor=ctx.redactor,
            sizer=ctx.sizer,
        )

    def _current_section(self) -> str:
        """The file as it is now: when the original is the snapshot's full copy, that copy plus
        the diff of the accepted edits (one full copy per request); else the text in full."""
        shown = self.ctx.shown_in_full.get(self.path)
        original, text = self.result.original, self.result.text
        if text == original or not original or shown is None:
            return file_section(self.path, text, shown=shown)
        if hashlib.sha256(original.encode()).hexdigest() != shown:
            return file_section(self.path, text)
        diff = unified_diff(self.path, original, text)
        return (
            f"# Current content of {self.path}\n\nThe `=== {self.path} ===` block shown in full "
            "above (in the workspace snapshot) with your accepted edits applied; the edits so "
            f"far, as a diff against that block:\n\n```diff\n{diff}```"
        )

    @property
    def path(self) -> str:
        return self.result.target.path

    async def run(self, feedback: str | None = None) -> CoderResult:
        """One coding pass: the first one, or a revision after review ``feedback``."""
        if feedback is not None:
            self.agent.add_user(
                f"# Review findings for {self.path}\n\n{feedback}\n\n"
                + self._current_section()
                + "\n\nSend SEARCH/REPLACE blocks against this current content."
            )
        failures = 0
        try:
            while True:
                reply = await self.agent.step()
                if reply.finish_reason == "length":
                    # A cut-off answer may end between blocks: applying part of it is a guess.
                    problem = (
                        "Your answer was cut off at the output limit. Send fewer, smaller "
                        "blocks: only the changed lines plus enough context to be unique."
                    )
                else:
                    problem = self._accept(reply.content)
                if problem is None:
                    return self.result
                failures += 1
                self.ctx.transcript.event("rejected", agent=self.agent.name, reason=problem)
                if failures > self.ctx.budget.settings.apply_rounds:
                    raise LimitsExceeded(
                        "apply_rounds",
                        f"the coder for {self.path} gave edits that do not apply "
                        f"{failures} times; last problem: {problem}",
                    )
                self.agent.add_user(
                    f"# Edit not applied\n\n{problem}\n\nNothing from that reply was applied; "
                    f"{self.path} is unchanged by it. Send corrected SEARCH/REPLACE blocks."
                )
        finally:
            self.ctx.transcript.flush()

    def _accept(self, content: str) -> str | None:
        """Apply a reply; return why it was refused, or None when it was applied."""
        blocks, errors = parse_edit_blocks(content or "")
        if errors:
            return "Malformed edit blocks:\n" + "\n".join(f"- {e}" for e in errors)
        declined = decline_reason(content or "")
        if blocks and declined is not None:
            return (
                f"Your reply has edit blocks and also says {DECLINE_STATEMENT}. Send either "
                f"SEARCH/REPLACE blocks for {self.path}, or the line {DECLINE_STATEMENT} "
                "without any block."
            )
        if not blocks:
            if declined is None:
                return self._no_blocks(content or "")
            self.result.declined = declined
            return None
        # The reply was restored already (Agent.step); a placeholder left over was never issued
        # (the model altered one) and would write "«redacted:…»" into the file.
        invented = [
            p for p in self.ctx.redactor.unknown_placeholders(content) if p not in self.result.text
        ]
        if invented:
            return (
                "Your blocks contain redaction placeholders that stand for nothing in this "
                f"task: {', '.join(sorted(set(invented)))}. A placeholder stands for a secret "
                "value: copy it exactly as it appears in the file, or leave that line out."
            )
        for block in blocks:
            try:
                path = self.ctx.workspace.normalize(block.path)
            except ValueError as exc:
                return f"Bad path in a block: {exc}. Edit only {self.path}."
            if path != self.path:
                return f"A block edits {block.path}, but you may edit only {self.path}."
        before = self.result.text
        try:
            applied = apply_blocks_detailed(before, blocks)
        except ApplyError as exc:
            hint = getattr(exc, "hint", "")
            message = getattr(exc, "message", "") or str(exc)
            return f"{message}\n{hint}".strip()
        after = applied.text
        problems = new_syntax_errors(self.path, before, after)
        if problems:
            return "Your edit introduces syntax errors, so it was rejected.\n" + describe(
                self.path, problems
            )
        self.result.text = after
        # The blocks as the file read them: re-applied later (merge, rebase) they mean the same.
        self.result.blocks.extend(applied.blocks)
        self.result.declined = None
        return None

    def _no_blocks(self, content: str) -> str:
        """Why a reply without blocks is refused, in words the model can act on."""
        if not content.strip():
            what = "Your reply was empty."
        elif "```" in content or "~~~" in content:
            what = (
                "Your reply has code in a fence but no SEARCH/REPLACE block: code in a fence "
                "is not applied, and the whole file must not be repeated."
            )
        else:
            what = "Your reply has no SEARCH/REPLACE block."
        return (
            f"{what} To change {self.path}, send SEARCH/REPLACE blocks in the format above. "
            f"If {self.path} needs no change, reply with the line {DECLINE_STATEMENT} "
            "followed by one sentence saying why."
        )
