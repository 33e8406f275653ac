"""Pure parts of goal runs: plan validation, the scheduling rule, the ledger's text and
records, the journal's run rows, and where the ledger sits in a step's task text."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_agent.agents.records import TaskSpec, task_text
from lsp_agent.goals.ledger import Ledger, StepRecord
from lsp_agent.goals.plan import PlanError, Step, ready_steps, validate_steps
from lsp_agent.goals.runner import failure_signature
from lsp_agent.tasks.journal import TaskJournal


def raw(key: str, files: list[str], deps: list[str] = ()) -> dict:
    return {
        "key": key,
        "title": f"title {key}",
        "instructions": f"do {key}",
        "files": files,
        "depends_on": list(deps),
        "acceptance": {"kind": "tests", "value": "tests/test_x.py"},
    }


def test_validate_steps_accepts_a_dag_and_cleans_it() -> None:
    steps = validate_steps([raw("a", ["x.py", "x.py"]), raw("b", ["y.py"], ["a"])])
    assert [s.key for s in steps] == ["a", "b"]
    assert steps[0].files == ("x.py",)
    assert steps[1].depends_on == ("a",)
    assert steps[0].acceptance.to_text() == "these tests must pass: tests/test_x.py"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "non-empty list"),
        ([raw("a", []), raw("a", [])], "already used"),
        ([raw("b", [], ["a"]), raw("a", [])], "not an earlier step"),
        ([{**raw("a", []), "title": " "}], "needs a title"),
        ([{**raw("a", []), "acceptance": {"kind": "vibes", "value": "x"}}], "acceptance kind"),
        ([{**raw("a", []), "key": "has space"}], "short name"),
    ],
)
def test_validate_steps_refuses_bad_plans(steps: list, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        validate_steps(steps)


def test_a_revision_may_depend_on_done_steps_but_not_reuse_their_keys() -> None:
    assert validate_steps([raw("c", [], ["a"])], done=["a"])[0].depends_on == ("a",)
    with pytest.raises(PlanError, match="already used"):
        validate_steps([raw("a", [])], done=["a"])


def test_paths_outside_the_root_are_refused() -> None:
    def resolve(path: str) -> str:
        if path.startswith(".."):
            raise ValueError(f"{path}: outside the workspace root")
        return path

    with pytest.raises(PlanError, match="outside the workspace"):
        validate_steps([raw("a", ["../etc/passwd"])], resolve=resolve)


def test_ready_steps_respects_dependencies_overlap_and_slots() -> None:
    a, b, c, d = (
        Step.from_json(raw(k, f, deps))
        for k, f, deps in (
            ("a", ["x.py"], []),
            ("b", ["x.py"], []),
            ("c", ["y.py"], []),
            ("d", ["z.py"], ["a"]),
        )
    )
    unknown = Step("u", "u", "u")  # no files: could touch anything
    assert ready_steps([a, b, c, d], [], [], 4) == [a, c]  # b overlaps a; d waits on a
    assert ready_steps([b, c, d], ["a"], [], 1) == [b]
    assert ready_steps([b, d], ["a"], [c], 4) == [b, d]
    assert ready_steps([unknown, c], [], [], 4) == [unknown]
    assert ready_steps([c], [], [unknown], 4) == []


def ledger() -> Ledger:
    steps = validate_steps([raw("a", ["x.py"]), raw("b", ["y.py"], ["a"])])
    led = Ledger("g-1", "Make it fast", "/r", "lsp-agent/g-1", "abc", plan=steps)
    led.done.append(
        StepRecord(
            "a",
            "title a",
            "0123456789abcdef",
            "made x fast",
            "1 file changed",
            ["x.py"],
            {"result": "approved"},
            "t-1",
        )
    )
    return led


def test_ledger_text_lists_plan_status_and_finished_summaries() -> None:
    text = ledger().to_text(current="b")
    assert text.startswith("# Goal ledger\n\nGoal: Make it fast\n")
    assert "1. [done] a: title a" in text
    assert "2. [current: this task] b: title b (after a)" in text
    assert "- a title a (commit 0123456789; 1 file changed; verification: approved)" in text
    assert "  made x fast" in text
    assert ledger().to_text(current="b") == text  # same state, same bytes


def test_ledger_round_trips_through_json() -> None:
    led = ledger()
    led.failures.append({"key": "b", "error": "boom", "signature": "boom"})
    again = Ledger.from_json(led.to_json())
    assert again.to_json() == led.to_json()
    assert again.pending() == [led.plan[1]]


def test_the_ledger_ends_every_roles_task_text() -> None:
    spec = TaskSpec(instruction="Goal step b: x", files=["y.py"], ledger=ledger().to_text("b"))
    text = task_text(spec)
    assert text.index("Files: y.py") < text.index("# Goal ledger")
    assert TaskSpec.from_json(spec.to_json()).ledger == spec.ledger
    assert "# Goal ledger" not in task_text(TaskSpec(instruction="plain task"))


def test_failure_signature_ignores_numbers_and_ids() -> None:
    one = failure_signature("token budget exhausted: 1200 of 1000 in t-3fa9c2d1e0")
    two = failure_signature("token budget  exhausted: 1300 of 1000 in t-77aa22bb11")
    assert one == two
    assert failure_signature("tests failed") != one


def test_journal_keeps_goal_runs(tmp_path: Path) -> None:
    with TaskJournal(tmp_path / "tasks.sqlite") as journal:
        journal.start_run("goal", {"state": "planning"}, run_id="g-1")
        journal.start_run("other", {}, run_id="r-2")
        journal.update_run("g-1", {"state": "running"})
        assert journal.get_run("g-1").meta == {"state": "running"}
        assert [r.id for r in journal.list_runs(fingerprint="goal")] == ["g-1"]
        assert journal.get_run("nope") is None
        with pytest.raises(KeyError):
            journal.update_run("nope", {})
