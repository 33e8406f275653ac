"""The reviewer's tools read the changed files, not the originals (real coder path)."""

from __future__ import annotations

from tests.agents.test_orchestrator import (
    CALC,
    block,
    coder_rule,
    make_workspace,
    plan_rule,
    review_rule,
    run,
)
from tests.agents.test_orchestrator_flows import tool_results


async def test_reviewer_tools_see_the_merged_texts(tmp_path, scripted):
    index = make_workspace(tmp_path / "ws", {"calc.py": CALC, "main.py": "from calc import add\n"})
    targets = [
        {"path": "calc.py", "instructions": "rename add to plus"},
        {"path": "util.py", "instructions": "new helper", "new": True},
    ]
    scripted.add_rule(plan_rule(targets))
    scripted.add_rule(
        coder_rule("calc.py", block("calc.py", "def add(a, b):\n", "def plus(a, b):\n"))
    )
    scripted.add_rule(
        coder_rule("util.py", block("util.py", "", "def twice(x):\n    return 2 * x\n"))
    )
    calls = [
        {"name": "read_file", "arguments": {"path": "calc.py"}},
        {"name": "grep", "arguments": {"pattern": "def "}},
        {"name": "find_definitions", "arguments": {"name": "plus"}},
        {"name": "find_definitions", "arguments": {"name": "add"}},
        {"name": "list_files", "arguments": {}},
        {"name": "read_file", "arguments": {"path": "main.py"}},
    ]
    scripted.add_rule(
        {
            "match": {"has_tool": "submit_review", "last_role": "user"},
            "reply": {"tool_calls": calls},
            "times": 1,
        }
    )
    scripted.add_rule(review_rule(True))

    result = await run(index, scripted, tmp_path)

    assert result.state == "succeeded", result.error
    read, grep, plus, add, listing, main = tool_results(scripted)
    assert "def plus(a, b):" in read and "def add" not in read
    assert "calc.py:1: def plus(a, b):" in grep and "util.py:1: def twice(x):" in grep
    assert "def add" not in grep
    assert plus.startswith("calc.py:1: function") and add == "no definition of 'add'"
    assert "util.py" in listing.split("\n")
    assert "from calc import add" in main  # an unchanged file reads as it is
