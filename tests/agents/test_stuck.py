"""Stuck agents end early with a message that says exactly how they were stuck (issue 17).

Each case is one a real weak model produced (SmolLM2 against llama-cpp-python ran each to the
24-step cap): prose forever, the same successful call over and over, the same text, different
invalid calls, replies cut at the output limit. Run through the real orchestrator and client.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.agents.loop import CUT_LIMIT, NO_TOOL_LIMIT, PROGRESS_WINDOW, REPEAT_LIMIT
from lsp_agent.index.workspace import WorkspaceIndex
from tests.agents.test_orchestrator import CALC, make_workspace, plan_rule, run


@pytest.fixture
def calc(tmp_path: Path) -> WorkspaceIndex:
    return make_workspace(tmp_path / "ws", {"calc.py": CALC, "README.md": "calc\n"})


def researcher_says(reply: Any) -> dict[str, Any]:
    return {"match": {"has_tool": "submit_plan"}, "reply": reply}


def researcher_requests(scripted: Any) -> list[Any]:
    return [r for r in scripted.requests if "submit_plan" in r.tool_names]


async def test_prose_without_tool_calls_ends_the_researcher(calc, scripted, tmp_path):
    counter = itertools.count()
    scripted.add_rule(researcher_says(lambda body: {"content": f"I think ({next(counter)})"}))
    result = await run(calc, scripted, tmp_path)
    assert result.state == "failed"
    assert f"answered {NO_TOOL_LIMIT} times in a row without a tool call" in result.error
    assert "has not called any tool so far" in result.error and "submit_plan" in result.error
    assert len(researcher_requests(scripted)) == NO_TOOL_LIMIT


async def test_the_same_text_again_and_again(calc, scripted, tmp_path):
    turns = itertools.count()

    def reply(body: dict[str, Any]) -> dict[str, Any]:
        # A new tool call every other turn, so only the repeated text can stop it.
        turn = next(turns)
        if turn % 2:
            return {"content": "Let me look at the files.", "tool_calls": []}
        return {"tool_calls": [{"name": "grep", "arguments": {"pattern": f"x{turn}"}}]}

    scripted.add_rule(researcher_says(reply))
    result = await run(calc, scripted, tmp_path)
    assert result.state == "failed"
    assert f"sent the same reply {REPEAT_LIMIT} times" in result.error
    assert "Let me look at the files." in result.error


async def test_the_same_successful_call_repeated(calc, scripted, tmp_path):
    scripted.add_rule(researcher_says({"tool_calls": [{"name": "list_files", "arguments": {}}]}))
    result = await run(calc, scripted, tmp_path)
    assert result.state == "failed"
    assert f"made the same call {REPEAT_LIMIT} times: list_files({{}})" in result.error
    assert len(researcher_requests(scripted)) == REPEAT_LIMIT


async def test_different_invalid_plans_are_no_progress(calc, scripted, tmp_path):
    counter = itertools.count()

    def bad_plan(body: dict[str, Any]) -> dict[str, Any]:
        n = next(counter)
        args = {"targets": [{"path": f"missing{n}.py", "instructions": "x"}], "notes": "n"}
        return {"tool_calls": [{"name": "submit_plan", "arguments": args}]}

    scripted.add_rule(researcher_says(bad_plan))
    result = await run(calc, scripted, tmp_path)
    assert result.state == "failed"
    assert f"made no progress in {PROGRESS_WINDOW} steps" in result.error
    assert len(researcher_requests(scripted)) == PROGRESS_WINDOW


async def test_a_cut_reply_is_never_acted_on_and_the_next_try_asks_for_less(
    calc, scripted, tmp_path
):
    # A complete, valid submit_plan that the server says was cut: it must not end the task.
    args = {"targets": [], "notes": "nothing needs to change at all"}
    cut = {"tool_calls": [{"name": "submit_plan", "arguments": args}], "finish_reason": "length"}
    scripted.add_rule(researcher_says(cut))
    result = await run(calc, scripted, tmp_path)
    assert result.state == "failed"
    assert "cut off at the output limit" in result.error and f"{CUT_LIMIT} times" in result.error
    second = researcher_requests(scripted)[1]
    tool_result = second.messages[-2]
    assert tool_result["role"] == "tool" and tool_result["content"].startswith("not run")
    note = second.messages[-1]["content"]
    assert "cut off at the output limit of" in note and "much shorter" in note


async def test_a_cut_reply_then_a_whole_one_goes_on(calc, scripted, tmp_path):
    args = {"targets": [], "notes": "n"}
    cut = {"tool_calls": [{"name": "submit_plan", "arguments": args}], "finish_reason": "length"}
    scripted.add_rule({**researcher_says(cut), "times": 1})
    scripted.add_rule(plan_rule([], notes="the task is already done in calc.py"))
    result = await run(calc, scripted, tmp_path)
    assert result.state == "no_changes", result.error
    assert result.summary == "no change needed: the task is already done in calc.py"


async def test_a_task_that_stops_early_keeps_a_complete_transcript(calc, scripted, tmp_path):
    scripted.add_rule(researcher_says({"content": "hmm"}))
    result = await run(calc, scripted, tmp_path)
    lines = [json.loads(line) for line in result.transcript.read_text().splitlines()]
    replies = [e for e in lines if e["event"] == "reply"]
    assert len(replies) == REPEAT_LIMIT and lines[-2]["event"] == "result"
    assert lines[-2]["state"] == "failed" and "same reply" in lines[-2]["error"]
