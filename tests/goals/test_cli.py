"""`lsp-agent goal` beyond the happy path: stuck runs, --dry-run then --resume, --apply (hash-
checked, all or nothing), --status listing, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

from tests.goals.conftest import goal_cli, tree
from tests.goals.support import GoalModel, chain
from tests.support.scripted_model import ScriptedModel


def rename(steps: list[dict], failed: str) -> list[dict]:
    index = next(i for i, s in enumerate(steps) if s["key"] == failed)
    rest = [dict(s) for s in steps[index:]]
    rest[0]["key"] = failed + "x"
    for step in rest[1:]:
        step["depends_on"] = [failed + "x" if d == failed else d for d in step["depends_on"]]
    return rest


def test_the_same_failure_twice_stops_the_run_as_stuck(repo: Path, monkeypatch) -> None:
    plan = chain(3)
    hook = GoalModel(
        plan,
        revise=lambda key: rename(plan, key),
        reject={"s2", "s2x"},
        reject_message="tests/test_core.py::test_core fails",
    )
    with ScriptedModel(hook=hook) as model:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        run = goal_cli(["Three steps", "--json"], repo, monkeypatch)
    assert run.code == 1
    report = json.loads(run.out)
    assert report["state"] == "stuck"
    assert "the same failure twice (step s2x)" in report["reason"]
    assert [f["key"] for f in report["failures"]] == ["s2", "s2x"]
    assert [s["key"] for s in report["steps"] if s["state"] == "done"] == ["s1"]


def test_dry_run_plans_only_then_resume_runs_the_plan(repo: Path, monkeypatch) -> None:
    hook = GoalModel(chain(2))
    with ScriptedModel(hook=hook) as model:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        planned = goal_cli(["Two steps", "--dry-run", "--json"], repo, monkeypatch)
        assert planned.code == 0, planned.err
        report = json.loads(planned.out)
        assert report["state"] == "planned"
        assert [s["key"] for s in report["steps"]] == ["s1", "s2"]
        assert [role for role, _ in hook.calls] == ["planner"]
        run = goal_cli(["--resume", report["runId"], "--json"], repo, monkeypatch)
    assert run.code == 0, run.err
    assert json.loads(run.out)["state"] == "succeeded"
    assert [role for role, _ in hook.calls].count("planner") == 1  # the plan was kept


def test_apply_brings_the_final_diff_in_all_or_nothing(repo: Path, monkeypatch) -> None:
    with ScriptedModel(
        hook=GoalModel(chain(2, files=lambda n: ["pkg/core.py", "pkg/new.py"][n - 1]))
    ) as model:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        run = goal_cli(["Two steps", "--json"], repo, monkeypatch)
    assert run.code == 0, run.err
    run_id = json.loads(run.out)["runId"]
    before = tree(repo)
    assert "pkg/new.py" not in before  # nothing was written during the run

    # A file the run changed was edited since the run began: nothing at all is written.
    (repo / "pkg" / "core.py").write_text("def core():\n    return 3\n")
    refused = goal_cli(["--apply", run_id, "--json"], repo, monkeypatch)
    assert refused.code == 1
    outcome = {f["path"]: f["status"] for f in json.loads(refused.out)["files"]}
    assert outcome == {"pkg/core.py": "changed_underneath", "pkg/new.py": "skipped"}
    assert not (repo / "pkg" / "new.py").exists()

    (repo / "pkg" / "core.py").write_bytes(before["pkg/core.py"])
    applied = goal_cli(["--apply", run_id], repo, monkeypatch)
    assert applied.code == 0, applied.err
    assert (repo / "pkg" / "core.py").read_text().endswith("# uncommitted\nSTEP_s1 = 1\n")
    assert (repo / "pkg" / "new.py").read_text() == "STEP_s2 = 2\n"


def test_status_lists_runs_and_shows_one(repo: Path, monkeypatch) -> None:
    with ScriptedModel(hook=GoalModel(chain(1))) as model:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        run = goal_cli(["One step", "--json"], repo, monkeypatch)
    run_id = json.loads(run.out)["runId"]
    listing = goal_cli(["--status"], repo, monkeypatch)
    assert listing.code == 0 and run_id in listing.out and "succeeded" in listing.out
    shown = goal_cli(["--status", run_id], repo, monkeypatch)
    assert "[done] s1 Add step 1" in shown.out


def test_bad_input_gets_a_clear_error(repo: Path, tmp_path: Path, monkeypatch) -> None:
    assert "say the goal" in goal_cli([], repo, monkeypatch).err
    no_model = goal_cli(["Anything"], repo, monkeypatch)
    assert no_model.code == 2 and "lsp-agent goal:" in no_model.err
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.setenv("LSP_AGENT_BASE_URL", "http://127.0.0.1:9/v1")
    not_git = goal_cli(["Anything", "--root", str(plain)], plain, monkeypatch)
    assert not_git.code == 2 and "not in a git repository" in not_git.err
    assert goal_cli(["--status", "g-nope"], repo, monkeypatch).code == 2
