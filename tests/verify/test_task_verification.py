"""A whole task through the real scripted model server, verified by real pytest and ruff in
real bubblewrap: the first edit breaks a test, the debugger's finding makes the coder fix it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.agents.orchestrator import ProgressEvent, TaskSpec, run_task
from lsp_agent.config import Settings, VerifySettings
from lsp_agent.index.workspace import WorkspaceIndex
from lsp_agent.tasks.model import TaskState
from tests.agents.test_orchestrator import (
    FakeSnapshot,
    block,
    coder_rule,
    make_client,
    plan_rule,
    review_rule,
)
from tests.support.scripted_model import ScriptedModel
from tests.verify.conftest import needs_bwrap, tree_digest

pytestmark = needs_bwrap

BREAK = block("calc.py", "    return a + b\n", "    return a - b\n")
FIX = block("calc.py", "    return a - b\n", "    return b + a\n")


@pytest.fixture
def scripted() -> Iterator[ScriptedModel]:
    with ScriptedModel() as model:
        yield model


def findings_rule(findings: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    return {
        "match": {"has_tool": "submit_findings"},
        "reply": {"tool_calls": [{"name": "submit_findings", "arguments": {"findings": findings}}]},
        **extra,
    }


async def run(
    project: Path, model: ScriptedModel, tmp_path: Path, settings: Settings | None = None
) -> tuple[Any, list[ProgressEvent]]:
    index = WorkspaceIndex(project, cache_path=None)
    index.build(jobs=1)
    events: list[ProgressEvent] = []
    result = await run_task(
        TaskSpec(instruction="make add commutative-safe", kind="refactor", files=["calc.py"]),
        index=index,
        snapshot=FakeSnapshot("PREFIX: calc.py defines add and mul."),
        client=make_client(model),
        settings=settings or Settings(),
        progress=events.append,
        transcript_dir=tmp_path / "transcripts",
        task_id="t-00000000000v",
    )
    return result, events


async def test_broken_then_fixed_in_round_two(
    project: Path, scripted: ScriptedModel, tmp_path: Path
) -> None:
    before = tree_digest(project)
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "rewrite add"}]))
    scripted.add_rule(coder_rule("calc.py", BREAK, times=1))
    scripted.add_rule(findings_rule([{"path": "calc.py", "message": "add subtracts; add a + b"}]))
    scripted.add_rule(coder_rule("calc.py", FIX))
    scripted.add_rule(review_rule(True))

    result, events = await run(project, scripted, tmp_path)

    assert result.state == "succeeded", (result.error, result.verification)
    assert "return b + a" in result.changes[0].new_text
    record = result.verification
    assert record["state"] == "passed"
    assert record["scratch"] == "overlay", "verification copies nothing where overlays work"
    assert [c["name"] for c in record["commands"]] == ["pytest", "ruff"]
    assert [r["new_failures"] for r in record["rounds"]] == [1, 0]
    first = {c["name"]: c for c in record["rounds"][0]["checks"]}
    assert list(first["pytest"]["new"]) == ["tests/test_calc.py::test_add"]
    assert first["pytest"]["preexisting"] == ["tests/test_calc.py::test_known_bug"]
    assert record["baseline"][0]["failures"] == 1
    assert "Verified by pytest, ruff: no new failures (2 rounds; 1 pre-existing failure" in (
        result.summary
    )
    messages = [e.message for e in events if e.stage == "verifying"]
    assert "verifying: 1 new failure, round 1" in messages
    assert "verifying: no new failures, round 2" in messages
    # The debugger saw the trimmed failure, not the pre-existing one.
    debug = [r for r in scripted.requests if "# Role: debugger" in str(r.body)]
    assert len(debug) == 1
    text = str(debug[0].body)
    assert "tests/test_calc.py::test_add" in text and "assert -1 == 5" in text
    assert "test_known_bug" not in text
    assert tree_digest(project) == before, "verification never writes the user's files"


async def test_still_failing_ends_unverified_with_its_changes(
    project: Path, scripted: ScriptedModel, tmp_path: Path
) -> None:
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "rewrite add"}]))
    scripted.add_rule(coder_rule("calc.py", BREAK, times=1))
    scripted.add_rule(findings_rule([{"path": "calc.py", "message": "add subtracts"}]))
    # The coder insists: its later rounds change a comment only.
    scripted.add_rule(
        coder_rule("calc.py", block("calc.py", "    return a - b\n", "    return a - b  # ok\n"))
    )
    settings = replace(Settings(), verify=VerifySettings(rounds=1))
    result, _ = await run(project, scripted, tmp_path, settings)
    assert result.state == TaskState.UNVERIFIED
    assert result.changes and "a - b" in result.changes[0].new_text
    assert "still fail after 1 revision round" in result.error
    record = result.verification
    assert record["state"] == "failed"
    assert [r["new_failures"] for r in record["rounds"]] == [1, 1]
    assert "tests/test_calc.py::test_add" in record["remaining"]
    assert "Not verified" in result.summary
    assert not any("submit_review" in str(r.body) for r in scripted.requests), "no review"


async def test_without_bwrap_the_task_is_unverified_and_names_the_package(
    project: Path, scripted: ScriptedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "rewrite add"}]))
    scripted.add_rule(coder_rule("calc.py", FIX.replace("a - b", "a + b")))
    monkeypatch.setattr("lsp_agent.verify.sandbox.bwrap_path", lambda: None)
    result, _ = await run(project, scripted, tmp_path)
    assert result.state == "unverified"
    assert result.verification["state"] == "refused"
    assert "bubblewrap" in result.verification["message"]


async def test_disabled_or_nothing_detected_is_skipped(
    scripted: ScriptedModel, tmp_path: Path
) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "rewrite add"}]))
    scripted.add_rule(coder_rule("calc.py", FIX.replace("a - b", "a + b")))
    scripted.add_rule(review_rule(True))
    result, _ = await run(root, scripted, tmp_path)
    assert result.state == "succeeded"
    assert result.verification == {"state": "skipped", "notes": [], "commands": []}


def run_check_rule(args: dict[str, Any]) -> dict[str, Any]:
    return {
        "match": {"has_tool": "run_check"},
        "reply": {"tool_calls": [{"name": "run_check", "arguments": args}]},
        "times": 1,
    }


async def test_researcher_reproduces_with_run_check(
    project: Path, scripted: ScriptedModel, tmp_path: Path
) -> None:
    scripted.add_rule(run_check_rule({"check": "pytest", "tests": ["--rootdir=/"]}))
    scripted.add_rule(run_check_rule({"check": "make", "tests": []}))
    scripted.add_rule(
        run_check_rule({"check": "pytest", "tests": ["tests/test_calc.py::test_known_bug"]})
    )
    scripted.add_rule(plan_rule([], notes="reproduced; nothing to change"))
    result, _ = await run(project, scripted, tmp_path)
    assert result.state == "no_changes"
    final = scripted.requests[-1].body["messages"]
    results = [m["content"] for m in final if m.get("role") == "tool"]
    assert "is not a test id" in results[0]
    assert "check must be one of ['pytest', 'ruff']" in results[1]
    assert "tests/test_calc.py::test_known_bug" in results[2]
    assert "assert 4 == 5" in results[2] and "1 failing" in results[2]


GOOD = block("calc.py", "    return a + b\n", "    return b + a\n")
REVISION_BREAKS = block("calc.py", "    return b + a\n", "    return b - a\n")
REVISION_FIX = block("calc.py", "    return b - a\n", "    return b + a  # reviewed\n")
REVIEW_FINDING = [{"path": "calc.py", "message": "mention the order in a comment"}]


async def test_reviewer_revision_that_breaks_a_test_is_verified_again(
    project: Path, scripted: ScriptedModel, tmp_path: Path
) -> None:
    """The first edit passes the checks; the reviewer's finding makes the coder change the file
    again and that revision breaks test_add: the final edits are verified again, the debugger
    sends it back, and only the fixed text can succeed."""
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "rewrite add"}]))
    scripted.add_rule(coder_rule("calc.py", GOOD, times=1))
    scripted.add_rule(review_rule(False, REVIEW_FINDING, times=1))
    scripted.add_rule(coder_rule("calc.py", REVISION_BREAKS, times=1))
    scripted.add_rule(findings_rule([{"path": "calc.py", "message": "add subtracts again"}]))
    scripted.add_rule(coder_rule("calc.py", REVISION_FIX))
    scripted.add_rule(review_rule(True))

    result, events = await run(project, scripted, tmp_path)

    assert result.state == "succeeded", (result.error, result.verification)
    assert "return b + a  # reviewed" in result.changes[0].new_text
    messages = [e.message for e in events if e.stage in ("verifying", "reviewing")]
    assert messages.index("reviewing (round 2)") > messages.index(
        "verifying: 1 new failure, round 1"
    )
    record = result.verification
    assert record["state"] == "passed"
    # Verified before the first review, again after the reviewer's revision (broken), and
    # once more after the debugger's fix.
    assert [r["new_failures"] for r in record["rounds"]] == [0, 1, 0]
    second = {c["name"]: c for c in record["rounds"][1]["checks"]}
    assert list(second["pytest"]["new"]) == ["tests/test_calc.py::test_add"]
    reviews = [r for r in scripted.requests if "submit_review" in r.tool_names]
    assert len(reviews) == 2
    # The second review came after the re-verification, not before it.
    debug = [r for r in scripted.requests if "# Role: debugger" in str(r.body)]
    assert len(debug) == 1 and debug[0].index < reviews[1].index
    assert "tests/test_calc.py::test_add" in str(debug[0].body)


async def test_reviewer_revision_that_stays_broken_ends_unverified(
    project: Path, scripted: ScriptedModel, tmp_path: Path
) -> None:
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "rewrite add"}]))
    scripted.add_rule(coder_rule("calc.py", GOOD, times=1))
    scripted.add_rule(review_rule(False, REVIEW_FINDING, times=1))
    scripted.add_rule(coder_rule("calc.py", REVISION_BREAKS, times=1))
    scripted.add_rule(findings_rule([{"path": "calc.py", "message": "add subtracts again"}]))
    scripted.add_rule(
        coder_rule("calc.py", block("calc.py", "    return b - a\n", "    return b - a  # ok\n"))
    )
    scripted.add_rule(review_rule(True))
    settings = replace(Settings(), verify=VerifySettings(rounds=1))

    result, _ = await run(project, scripted, tmp_path, settings)

    assert result.state == TaskState.UNVERIFIED, (result.error, result.verification)
    assert "b - a" in result.changes[0].new_text
    assert [r["new_failures"] for r in result.verification["rounds"]] == [0, 1, 1]
    assert "tests/test_calc.py::test_add" in result.verification["remaining"]
    reviews = [r for r in scripted.requests if "submit_review" in r.tool_names]
    assert len(reviews) == 1, "the broken revision never reached the reviewer's approval"
