"""Provider faults from the real scripted server surface as clear task states, never crashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.agents.test_orchestrator import (
    CALC,
    block,
    coder_rule,
    make_workspace,
    plan_rule,
    review_rule,
    run,
)

PLAN = plan_rule([{"path": "calc.py", "instructions": "rename add to plus"}])
CODE = coder_rule("calc.py", block("calc.py", "def add(a, b):\n", "def plus(a, b):\n"))


@pytest.fixture
def calc(tmp_path: Path):
    return make_workspace(tmp_path / "ws", {"calc.py": CALC})


def fault(match: dict[str, Any], kind: str, **extra: Any) -> dict[str, Any]:
    return {"match": match, "fault": {"kind": kind, **extra}}


@pytest.mark.parametrize(
    ("rule", "kind", "words"),
    [
        (
            fault({"has_tool": "submit_plan"}, "status", status=429, retry_after=0),
            "rate_limit",
            "429",
        ),
        (fault({"has_tool": "submit_plan"}, "status", status=500), "server", "500"),
        (fault({"has_tool": "submit_plan"}, "drop"), "connection", "cannot reach"),
        (fault({"contains": "# Target file: calc.py"}, "truncate_stream"), "connection", "stream"),
    ],
    ids=["429-exhausted", "500-exhausted", "dropped-connection", "truncated-stream"],
)
async def test_provider_fault_is_a_clear_failed_state(calc, scripted, tmp_path, rule, kind, words):
    scripted.add_rule(rule)
    scripted.add_rule(PLAN)
    scripted.add_rule(CODE)
    scripted.add_rule(review_rule(True))

    result = await run(calc, scripted, tmp_path, max_retries=1)

    assert result.state == "failed"
    assert result.error.startswith(f"model error ({kind}):"), result.error
    assert words in result.error
    assert result.changes == []
    assert len([r for r in scripted.requests if r.fault]) == 2  # the attempt and one retry


async def test_transient_500_is_retried_and_the_task_succeeds(calc, scripted, tmp_path):
    scripted.add_rule({**fault({"has_tool": "submit_plan"}, "status", status=500), "times": 1})
    scripted.add_rule(PLAN)
    scripted.add_rule(CODE)
    scripted.add_rule(review_rule(True))

    result = await run(calc, scripted, tmp_path)

    assert result.state == "succeeded", result.error
    assert result.changes[0].new_text.startswith("def plus")


async def test_invalid_tool_json_is_sent_back_and_recovered(calc, scripted, tmp_path):
    scripted.add_rule(
        {**fault({"has_tool": "submit_plan"}, "invalid_tool_json"), **PLAN, "times": 1}
    )
    scripted.add_rule(PLAN)
    scripted.add_rule(CODE)
    scripted.add_rule(review_rule(True))

    result = await run(calc, scripted, tmp_path)

    assert result.state == "succeeded", result.error
    second = [r for r in scripted.requests if "submit_plan" in r.tool_names][1]
    tool_message = second.messages[-1]
    assert tool_message["role"] == "tool"
    assert tool_message["content"].startswith("error: invalid arguments for submit_plan")
