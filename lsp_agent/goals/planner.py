"""The planner role: a goal (and, on a revision, the ledger and a failure report) in, steps out.

It is an agent like the researcher: the same system prompt and stable prefix as messages 0-1,
the read-only tools over the run's tree, and one submit tool, ``submit_goal_plan``, whose
arguments are validated (``plan.validate_steps``) before the plan is accepted; a bad plan goes
back to the planner as a tool error.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from lsp_agent.agents.loop import Agent, Budget, Submitted, ToolError
from lsp_agent.agents.orchestrator import request_sizer
from lsp_agent.agents.roles import base_messages, task_message
from lsp_agent.agents.tools import Tool, Workspace, research_tools
from lsp_agent.agents.transcript import Transcript, environment_secrets
from lsp_agent.config import Settings
from lsp_agent.goals.acceptance import planner_note, resolve_acceptance
from lsp_agent.goals.plan import ACCEPTANCE_KINDS, PlanError, Step, validate_steps
from lsp_agent.redact import Redactor
from lsp_agent.verify.checks import Check

ROLE = "planner"


@functools.cache
def _prompt(name: str) -> str:
    return resources.files("lsp_agent.goals").joinpath(f"prompts/{name}.md").read_text("utf-8")


@dataclass
class PlannerReply:
    steps: list[Step]
    notes: str
    usage: Any  # agents.usage.Usage


def submit_goal_plan_tool(ws: Workspace, done: Iterable[str], checks: Sequence[Check] = ()) -> Tool:
    finished = list(done)

    def resolve(path: str) -> str:
        try:
            return ws.resolve(path, must_exist=False)
        except ToolError as exc:
            raise ValueError(str(exc)) from None

    def submit(args: dict[str, Any]) -> str:
        notes = args.get("notes", "")
        if not isinstance(notes, str):
            raise ToolError("notes must be a string")
        try:
            steps = validate_steps(
                args.get("steps"),
                done=finished,
                resolve=resolve,
                accept=lambda acceptance: resolve_acceptance(acceptance, checks, resolve),
            )
        except PlanError as exc:
            raise ToolError(str(exc)) from None
        raise Submitted({"steps": steps, "notes": notes.strip()})

    string = {"type": "string"}
    strings = {"type": "array", "items": string}
    acceptance = {
        "type": "object",
        "properties": {"kind": {"type": "string", "enum": list(ACCEPTANCE_KINDS)}, "value": string},
        "required": ["kind", "value"],
    }
    step = {
        "type": "object",
        "properties": {
            "key": string,
            "title": string,
            "instructions": string,
            "files": strings,
            "depends_on": strings,
            "acceptance": acceptance,
        },
        "required": ["key", "title", "instructions", "files", "depends_on", "acceptance"],
    }
    schema = {
        "type": "object",
        "properties": {"steps": {"type": "array", "items": step}, "notes": string},
        "required": ["steps", "notes"],
    }
    return Tool(
        "submit_goal_plan",
        "Finish planning: the steps to run, in order, with files, dependencies and checks.",
        schema,
        submit,
    )


async def plan_goal(
    *,
    goal: str,
    index: Any,
    snapshot: Any,
    client: Any,
    settings: Settings,
    transcript_path: Path,
    ledger_text: str = "",
    failure: dict[str, str] | None = None,
    done: Iterable[str] = (),
    checks: Sequence[Check] = (),
    check_notes: Sequence[str] = (),
) -> PlannerReply:
    """One planner conversation. ``failure`` ({"key", "title", "error"}) makes it a revision:
    the answer then replaces the steps not yet done. ``checks`` are the project's checks an
    acceptance may run (``resolve_checks``); the planner is told which."""
    provider = getattr(client, "provider", None)
    secrets = [*environment_secrets(), getattr(provider, "api_key", "") or ""]
    transcript = Transcript(transcript_path, secrets=secrets)
    redactor = Redactor(secrets)
    budget = Budget.for_settings(settings)
    ws = Workspace(index, None, redactor=redactor)
    extra = [planner_note(checks, check_notes), ledger_text]
    if failure is not None:
        extra.append(Template(_prompt("revise")).safe_substitute(failure))
    text = task_message(_prompt(ROLE).strip(), "Goal: " + goal.strip(), snapshot.tail, *extra)
    messages = [*base_messages(snapshot.prefix), {"role": "user", "content": text}]
    agent = Agent(
        role=ROLE,
        name=ROLE,
        client=client,
        messages=messages,
        budget=budget,
        transcript=transcript,
        tools=[*research_tools(ws), submit_goal_plan_tool(ws, done, checks)],
        redactor=redactor,
        # Every request fits the window (agents/fit.py): a goal run's snapshot takes the
        # window's share, and the planner's reads would otherwise outgrow the rest.
        sizer=request_sizer(settings, provider),
    )
    transcript.event("planner", goal=goal, revision=failure is not None)
    try:
        payload = await agent.run("Call submit_goal_plan to finish.")
    finally:
        transcript.flush()
    return PlannerReply(payload["steps"], payload["notes"], budget.usage)
