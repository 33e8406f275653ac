"""The agent loop against the real scripted server: tools, nudges, limits, loop detection, and the
transcript written in ``finally``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.agents.loop import Agent, Budget, LimitsExceeded, LoopDetected, Submitted, ToolError
from lsp_agent.agents.tools import Tool
from lsp_agent.agents.transcript import Transcript, read_transcript
from lsp_agent.agents.usage import Usage
from lsp_agent.config import BudgetSettings
from tests.agents.test_orchestrator import make_client
from tests.support.scripted_model import ScriptedModel


def echo_tools(seen: list[dict[str, Any]]) -> list[Tool]:
    def echo(args: dict[str, Any]) -> str:
        seen.append(args)
        if args.get("fail"):
            raise ToolError("it failed")
        return f"echo {args.get('text', '')}"

    def done(args: dict[str, Any]) -> str:
        raise Submitted(args["answer"])

    obj = {"type": "object", "properties": {"text": {"type": "string"}}}
    return [Tool("echo", "echo", obj, echo), Tool("done", "finish", obj, done)]


def tool_reply(name: str, **args: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": args}]}


def make_agent(model: ScriptedModel, tmp_path: Path, seen: list, **budget: Any) -> Agent:
    return Agent(
        role="researcher",
        name="researcher",
        client=make_client(model),
        messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "go"}],
        budget=Budget(replace(BudgetSettings(), **budget)),
        transcript=Transcript(tmp_path / "t.jsonl"),
        tools=echo_tools(seen),
    )


async def test_tools_run_then_submit_returns_the_payload(scripted, tmp_path):
    # First match wins: the nudge (a user message) must not match the opening rule.
    scripted.add_rule(
        {"match": {"last_contains": "Finish"}, "reply": tool_reply("done", answer=42)}
    )
    scripted.add_rule({"match": {"last_role": "user"}, "reply": tool_reply("echo", text="hi")})
    scripted.add_rule({"match": {"last_contains": "echo hi"}, "reply": {"content": "no tool"}})
    seen: list[dict[str, Any]] = []
    agent = make_agent(scripted, tmp_path, seen)

    assert await agent.run("Finish with done.") == 42

    assert seen == [{"text": "hi"}]
    roles = [m["role"] for m in agent.messages]
    assert roles == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
        "tool",
    ]
    assert agent.messages[3]["content"] == "echo hi"
    assert agent.messages[-1]["content"] == "submitted"
    assert agent.budget.usage.requests == 3
    events = [e["event"] for e in read_transcript(tmp_path / "t.jsonl")]
    assert events.count("reply") == 3 and events.count("tool") == 2


async def test_same_failing_call_three_times_is_a_loop(scripted, tmp_path):
    scripted.add_rule({"match": {}, "reply": tool_reply("echo", fail=True, text="x")})
    agent = make_agent(scripted, tmp_path, [])
    with pytest.raises(LoopDetected, match="3 times"):
        await agent.run("n")
    assert len(scripted.requests) == 3
    # The transcript was flushed in finally although the loop raised.
    assert read_transcript(tmp_path / "t.jsonl")[-1]["event"] == "tool"


async def test_different_failing_calls_are_not_a_loop(scripted, tmp_path):
    for n in range(4):
        scripted.add_rule(
            {"match": {}, "reply": tool_reply("echo", fail=True, text=str(n)), "times": 1}
        )
    scripted.add_rule({"match": {}, "reply": tool_reply("done", answer="ok")})
    agent = make_agent(scripted, tmp_path, [])
    assert await agent.run("n") == "ok"


async def test_unknown_tool_and_bad_json_go_back_as_errors(scripted, tmp_path):
    scripted.add_rule({"match": {"last_role": "user"}, "reply": tool_reply("rm_rf", path="/")})
    scripted.add_rule(
        {
            "match": {"last_contains": "unknown tool"},
            "reply": {"tool_calls": [{"name": "echo", "arguments": '{"text": '}]},
        }
    )
    scripted.add_rule(
        {"match": {"last_contains": "invalid arguments"}, "reply": tool_reply("done", answer=1)}
    )
    agent = make_agent(scripted, tmp_path, [])
    assert await agent.run("n") == 1
    tools = [m["content"] for m in agent.messages if m["role"] == "tool"]
    assert tools[0].startswith("error: unknown tool 'rm_rf'")
    assert tools[1].startswith("error: invalid arguments for echo")


async def test_step_and_time_limits(scripted, tmp_path):
    scripted.add_rule({"match": {}, "reply": {"content": "no tools"}})
    agent = make_agent(scripted, tmp_path, [], max_steps=2)
    with pytest.raises(LimitsExceeded) as exc:
        await agent.run("use a tool")
    assert exc.value.kind == "steps" and len(scripted.requests) == 2

    late = make_agent(scripted, tmp_path, [], max_seconds=0.0)
    with pytest.raises(LimitsExceeded) as exc:
        await late.step()
    assert exc.value.kind == "time" and len(scripted.requests) == 2  # no request was sent


async def test_token_budget_binds_when_the_server_reports_no_usage(scripted, tmp_path):
    budget = Budget(BudgetSettings(max_tokens=100))
    budget.charge(_no_usage(), sent_chars=300, reply_chars=100)
    assert budget.tokens == 100
    with pytest.raises(LimitsExceeded) as exc:
        budget.check()
    assert exc.value.kind == "tokens"
    budget = Budget(BudgetSettings(max_tokens=100))
    budget.charge(Usage(prompt_tokens=10, completion_tokens=5), sent_chars=4000)
    assert budget.tokens == 15  # reported usage wins over the estimate


def _no_usage() -> Usage:
    return Usage(requests=1)
