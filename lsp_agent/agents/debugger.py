"""The debugger role: new check failures in, findings per file out (routed like review findings).

It keeps its conversation across verification rounds, so a second round sees what it asked for
the first time and what still fails.
"""

from __future__ import annotations

from typing import Any

from lsp_agent.agents.loop import Agent, Submitted, ToolError
from lsp_agent.agents.roles import Plan, RoleContext, base_messages, render, task_message
from lsp_agent.agents.tools import Tool, research_tools


def submit_findings_tool() -> Tool:
    def submit(args: dict[str, Any]) -> str:
        findings = args.get("findings")
        if not isinstance(findings, list) or not all(
            isinstance(f, dict) and isinstance(f.get("message"), str) for f in findings
        ):
            raise ToolError('findings must be a list of {"path": str, "message": str}')
        if not findings:
            raise ToolError("give at least one finding the coders can act on")
        clean = [{"path": str(f.get("path") or ""), "message": f["message"]} for f in findings]
        raise Submitted(clean)

    finding = {
        "type": "object",
        "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
        "required": ["message"],
        "additionalProperties": False,
    }
    return Tool(
        "submit_findings",
        "Finish: what each file's coder must change so the new failures go away.",
        {
            "type": "object",
            "properties": {"findings": {"type": "array", "items": finding}},
            "required": ["findings"],
            "additionalProperties": False,
        },
        submit,
    )


class Debugger:
    def __init__(self, ctx: RoleContext, plan: Plan) -> None:
        self.ctx, self.plan = ctx, plan
        self.agent: Agent | None = None

    async def diagnose(self, failures: str, diff: str, round_number: int) -> list[dict[str, str]]:
        body = (
            f"# New failures (verification round {round_number})\n\n{failures}\n\n"
            f"# Combined diff\n\n```diff\n{diff or '(empty)'}\n```"
        )
        if self.agent is None:
            text = task_message(
                render("debugger"), self.ctx.task, self.ctx.tail, self.plan.to_text(), body
            )
            messages = [*base_messages(self.ctx.prefix), {"role": "user", "content": text}]
            self.agent = Agent(
                role="debugger",
                name="debugger",
                client=self.ctx.client,
                messages=messages,
                budget=self.ctx.budget,
                transcript=self.ctx.transcript,
                tools=[*research_tools(self.ctx.workspace), submit_findings_tool()],
                redactor=self.ctx.redactor,
                sizer=self.ctx.sizer,  # its requests fit the window like every role's
            )
        else:
            self.agent.add_user("The coders revised the files; these checks still fail.\n\n" + body)
        return await self.agent.run("Call submit_findings to finish.")
