"""The roles' prompts and message layout, and the two tool-using roles: researcher and reviewer.

Message layout (docs/protocol.md): message 0 is the system prompt shared by every role, message 1
is the snapshot's stable prefix. Both are byte-identical across roles, requests and tasks while
the prefix is unchanged, so provider prefix caches hit. Everything that varies (the role, the
task, the snapshot tail) comes after them, starting with a ``# Role: <role>`` line.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from string import Template
from typing import Any

from lsp_agent.agents.fit import RequestSizer
from lsp_agent.agents.loop import Agent, Budget
from lsp_agent.agents.plans import MAX_TARGETS, Plan, PlanChecker, Target, validate_plan
from lsp_agent.agents.tools import Workspace, research_tools, submit_plan_tool, submit_review_tool
from lsp_agent.agents.transcript import Transcript
from lsp_agent.redact import Redactor

__all__ = ["MAX_TARGETS", "Plan", "Target", "validate_plan"]  # re-exported from plans.py

PREFIX_HEADER = "# Workspace snapshot\n\n"


@functools.cache
def prompt(name: str) -> str:
    """A prompt template from ``lsp_agent/agents/prompts/<name>.md``."""
    return resources.files("lsp_agent.agents").joinpath(f"prompts/{name}.md").read_text("utf-8")


def render(name: str, **values: str) -> str:
    return Template(prompt(name)).substitute(values).strip()


def base_messages(prefix: str) -> list[dict[str, Any]]:
    """Messages 0 and 1: the same bytes for every role and request while the prefix holds."""
    return [
        {"role": "system", "content": prompt("system").strip()},
        {"role": "user", "content": prefix_message(prefix)},
    ]


@functools.lru_cache(maxsize=4)
def prefix_message(prefix: str) -> str:
    """One string object per prefix: its hash is computed once, so the redaction cache finds a
    multi-megabyte prefix message without rescanning it for every agent."""
    return PREFIX_HEADER + prefix


def task_message(role_text: str, task: str, tail: str, *extra: str) -> str:
    parts = [role_text, "# Task\n\n" + task.strip()]
    parts.extend(part.strip() for part in extra if part and part.strip())
    if tail.strip():
        parts.append("# Recent changes and focus\n\n" + tail.strip())
    return "\n\n".join(parts) + "\n"


def _agent(role: str, name: str, ctx: RoleContext, text: str, tools: list[Any]) -> Agent:
    messages = base_messages(ctx.prefix)
    messages.append({"role": "user", "content": text})
    return Agent(
        role=role,
        name=name,
        client=ctx.client,
        messages=messages,
        budget=ctx.budget,
        transcript=ctx.transcript,
        tools=tools,
        redactor=ctx.redactor,
        sizer=ctx.sizer,
    )


@dataclass
class RoleContext:
    """What every role of one task shares."""

    client: Any  # ModelClient
    workspace: Workspace
    budget: Budget
    transcript: Transcript
    prefix: str
    tail: str
    task: str
    # Secrets in anything sent to a model become placeholders; replies are restored.
    redactor: Redactor = field(default_factory=Redactor)
    files: tuple[str, ...] = ()  # the task's own files: a plan that leaves one out is warned
    # More researcher tools (the sandboxed run_check of agents/verification.py when checks exist)
    research_extra: list[Any] = field(default_factory=list)
    # Fits each request into the model's window and records what went in (fit.py).
    sizer: RequestSizer | None = None
    # path -> sha256 of the text the snapshot shows in full: coders refer to that copy.
    shown_in_full: Mapping[str, str] = field(default_factory=dict)


async def research(ctx: RoleContext) -> Plan:
    checker = PlanChecker(ctx.workspace, ctx.files)
    tools = [
        *research_tools(ctx.workspace),
        *ctx.research_extra,
        submit_plan_tool(lambda a: checker(a).to_json()),
    ]
    text = task_message(render("researcher"), ctx.task, ctx.tail)
    agent = _agent("researcher", "researcher", ctx, text, tools)
    payload = await agent.run(
        "Call submit_plan to finish (an empty targets list, with notes that say why, if "
        "nothing needs to change).",
        must_call="submit_plan",
    )
    return Plan.from_json(payload)


class Reviewer:
    """Keeps its conversation across rounds so a re-review sees what it asked for. Its tools
    read the changed files as the coders left them (``review(texts=...)``), not the originals."""

    def __init__(self, ctx: RoleContext, plan: Plan) -> None:
        self.ctx, self.plan = ctx, plan
        self.agent: Agent | None = None
        base = ctx.workspace
        self.workspace = Workspace(base.index, base.texts, redactor=base.redactor)

    async def review(self, diff: str, texts: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Review ``diff``; ``texts`` (path -> merged text) is what the tools show for the
        files it changes."""
        self.workspace.revise(texts or {})
        diff_text = "# Combined diff\n\n```diff\n" + (diff or "(empty)\n") + "```"
        if self.agent is None:
            tools = [*research_tools(self.workspace), submit_review_tool()]
            text = task_message(
                render("reviewer"), self.ctx.task, self.ctx.tail, self.plan.to_text(), diff_text
            )
            self.agent = _agent("reviewer", "reviewer", self.ctx, text, tools)
        else:
            self.agent.add_user(
                "# Revised diff\n\nThe coders addressed your findings. Review again.\n\n"
                + diff_text
            )
        return await self.agent.run("Call submit_review to finish.", must_call="submit_review")
