"""A 20-step goal through the real CLI, the real scripted HTTP model and real git: one step
fails its acceptance until the planner revises the plan, another meets a 5xx storm; the run
completes with the ledger, the branch and the prompts all consistent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.goals.conftest import goal_cli, tree
from tests.goals.support import GoalModel, chain, run_git, step_of
from tests.support.scripted_model import ScriptedModel


def revised(steps: list[dict], failed: str) -> list[dict]:
    """Replace the failed step by a differently keyed one; the rest stays."""
    done_index = next(i for i, s in enumerate(steps) if s["key"] == failed)
    replacement = dict(
        steps[done_index], key=failed + "b", title=steps[done_index]["title"] + " (revised)"
    )
    rest = [dict(s) for s in steps[done_index + 1 :]]
    for step in rest:
        step["depends_on"] = [failed + "b" if d == failed else d for d in step["depends_on"]]
    return [replacement, *rest]


def test_twenty_steps_with_a_revision_and_a_5xx_storm(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = chain(20)
    hook = GoalModel(
        plan, revise=lambda key: revised(plan, key), reject={"s7"}, storm_at="s12", storm_size=5
    )
    user_tree = tree(repo)
    with ScriptedModel(hook=hook) as model:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        run = goal_cli(["Grow the package by twenty steps", "--json"], repo, monkeypatch)
        requests = model.requests
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert report["state"] == "succeeded", report["reason"]
    keys = [s["key"] for s in report["steps"]]
    assert keys == [f"s{n}" for n in range(1, 7)] + ["s7b"] + [f"s{n}" for n in range(8, 21)]
    assert all(s["state"] == "done" for s in report["steps"])
    assert report["revisions"] == 1
    assert [f["key"] for f in report["failures"]] == ["s7"]
    assert hook.faults == 5  # the storm happened, and was waited out

    # Every step's commit is on the branch, in plan order, with its trailer; nothing else is.
    branch = report["branch"]
    log = run_git(repo, "log", "--format=%H %s", f"{report['baseCommit']}..{branch}", "--reverse")
    commits = [line.split(" ", 1) for line in log.splitlines()]
    assert [c[0] for c in commits] == [s["commit"] for s in report["steps"]]
    assert [c[1] for c in commits] == [s["title"] for s in report["steps"]]
    for step in report["steps"]:
        body = run_git(repo, "log", "-1", "--format=%B", step["commit"])
        assert f"Lsp-Agent-Step: {step['key']}" in body
        assert step["changed"] == [f"pkg/step_{int(step['key'][1:].rstrip('b')):02d}.py"]
    # The base holds the uncommitted change; the final tree holds every step's file.
    assert "return 2" in run_git(repo, "show", f"{branch}:pkg/core.py")
    for n in range(1, 21):
        text = run_git(repo, "show", f"{branch}:pkg/step_{n:02d}.py")
        key = "s7b" if n == 7 else f"s{n}"
        assert text == f"STEP_{key} = {n}\n"

    # The user's working tree and index were never touched.
    assert tree(repo) == user_tree
    assert run_git(repo, "status", "--porcelain").splitlines() == [" M pkg/core.py"]

    # Composition: each step's requests carried the ledger with every earlier step's summary,
    # at the same place (the end of the task message), in every role.
    done_before: list[str] = []
    order = [s["key"] for s in report["steps"]]
    for key in order:
        sent = [r for r in requests if r.status == 200 and step_of(r.body) == key]
        assert sent, key
        for request in sent:
            task = str(request.messages[2]["content"])
            ledger = task[task.index("# Goal ledger") :]
            assert f"[current: this task] {key}:" in ledger
            for earlier in done_before:
                assert f"- {earlier} " in ledger, (key, earlier)
                assert f"for {earlier}" in ledger  # its summary (the researcher's notes)
        done_before.append(key)
    # The revised step's requests knew about the failed attempt.
    s7b = next(r for r in requests if step_of(r.body) == "s7b")
    assert "acceptance check of s7 fails" in str(s7b.messages[2]["content"])


def test_steps_that_add_files_keep_the_prefix_byte_for_byte(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each step adds a file; the next steps' requests still start with the same prefix
    message (the added files are in the tail), so the provider's cache keeps hitting and the
    snapshot is not re-ranked per step."""
    # A prefix of some size: three one-line files stay under the churn threshold (10 %).
    body = "".join(f"def helper_{n}(x: int) -> int:\n    return x * {n}\n\n\n" for n in range(80))
    (repo / "pkg" / "helpers.py").write_text(body)
    run_git(repo, "add", "pkg/helpers.py")
    run_git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "helpers")
    hook = GoalModel(chain(3))
    with ScriptedModel(hook=hook) as model:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        run = goal_cli(["Three files", "--json"], repo, monkeypatch)
        requests = model.requests
    assert run.code == 0, run.err
    prefixes = {str(r.messages[1]["content"]) for r in requests if r.status == 200}
    assert len(prefixes) == 1, "the prefix changed between steps"
    researcher_s3 = next(
        r for r in requests if step_of(r.body) == "s3" and "submit_plan" in r.tool_names
    )
    task = str(researcher_s3.messages[2]["content"])
    for n in (1, 2):  # the earlier steps' new files, whole, in the tail
        assert f"=== pkg/step_0{n}.py (new since the snapshot) ===\nSTEP_s{n} = {n}\n" in task
