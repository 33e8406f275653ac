"""--jobs: independent steps overlap in time, each in its own worktree, and merge; steps that
share a file are serialised; an undeclared conflict re-runs the later step on the merged tree."""

from __future__ import annotations

import json
from pathlib import Path

from lsp_agent.config import workspace_cache_dir
from tests.goals.conftest import goal_cli
from tests.goals.support import GoalModel, run_git, step_of
from tests.support.scripted_model import RecordedRequest, ScriptedModel


def step(key: str, path: str, deps: tuple[str, ...] = ()) -> dict:
    return {
        "key": key,
        "title": f"Write {key}",
        "instructions": f"Append STEP_{key} to {path}.",
        "files": [path],
        "depends_on": list(deps),
        "acceptance": {"kind": "criterion", "value": f"{path} has STEP_{key}"},
    }


def span(requests: list[RecordedRequest], key: str) -> tuple[float, float]:
    mine = [r for r in requests if step_of(r.body) == key]
    return min(r.start for r in mine), max(r.end or r.start for r in mine)


def test_independent_steps_overlap_in_their_own_worktrees(repo: Path, monkeypatch) -> None:
    trees_seen: list[set[str]] = []

    def look(_key: str) -> None:
        (steps,) = (workspace_cache_dir(repo) / "goals").glob("g-*/steps")
        trees_seen.append({p.name for p in steps.iterdir()})

    hook = GoalModel([step("a", "pkg/a.py"), step("b", "pkg/b.py")], on_coder=look)
    with ScriptedModel(hook=hook, latency_ms=300) as model:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        run = goal_cli(["Two files", "--jobs", "2", "--json"], repo, monkeypatch)
        requests = model.requests
    assert run.code == 0, run.err
    report = json.loads(run.out)
    a, b = span(requests, "a"), span(requests, "b")
    assert a[0] < b[1] and b[0] < a[1], "the two steps did not overlap in time"
    assert any({"a-1", "b-2"} <= seen for seen in trees_seen), trees_seen
    branch = report["branch"]
    assert run_git(repo, "show", f"{branch}:pkg/a.py") == "STEP_a = 0\n"
    assert run_git(repo, "show", f"{branch}:pkg/b.py") == "STEP_b = 0\n"
    titles = run_git(repo, "log", "--format=%s", f"{report['baseCommit']}..{branch}", "--reverse")
    assert titles.splitlines() == ["Write a", "Write b"]  # merged in plan order
    worktrees = run_git(repo, "worktree", "list")
    assert "/steps/" not in worktrees  # the step worktrees are gone once merged


def test_steps_sharing_a_file_are_serialised(repo: Path, monkeypatch) -> None:
    hook = GoalModel([step("a", "pkg/core.py"), step("b", "pkg/core.py")])
    with ScriptedModel(hook=hook, latency_ms=200) as model:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        run = goal_cli(["One file twice", "--jobs", "2", "--json"], repo, monkeypatch)
        requests = model.requests
    assert run.code == 0, run.err
    assert span(requests, "a")[1] <= span(requests, "b")[0]
    b_coder = next(
        r
        for r in requests
        if step_of(r.body) == "b" and "# Target file" in str(r.messages[2]["content"])
    )
    # b saw a's change (in its message, or in the snapshot copy its message refers to)
    assert "STEP_a = 0" in str(b_coder.messages[1]["content"]) + str(b_coder.messages[2]["content"])
    text = run_git(repo, "show", f"{json.loads(run.out)['branch']}:pkg/core.py")
    assert text.endswith("return 2  # uncommitted\nSTEP_a = 0\nSTEP_b = 0\n")


def test_an_undeclared_conflict_reruns_the_later_step(repo: Path, monkeypatch) -> None:
    # b declares only pkg/b.py but also appends to pkg/a.py: both ran from the same base, so
    # b's commit no longer applies once a is merged; b runs again on the merged tree.
    hook = GoalModel(
        [step("a", "pkg/a.py"), step("b", "pkg/b.py")], extra_targets={"b": ["pkg/a.py"]}
    )
    with ScriptedModel(hook=hook, latency_ms=200) as model:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        run = goal_cli(["Conflict", "--jobs", "2", "--json"], repo, monkeypatch)
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert [k for role, k in hook.calls if role == "researcher"].count("b") == 2
    assert run_git(repo, "show", f"{report['branch']}:pkg/a.py") == "STEP_a = 0\nSTEP_b = 0\n"
    assert "conflicts with the merged tree" in run.err
