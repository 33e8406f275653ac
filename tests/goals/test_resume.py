"""Survival: `kill -9` in the middle of a step, then `--resume`; a budget stop at a step
boundary, then a resume with more budget. Both against the real CLI and real git."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lsp_agent.config import workspace_cache_dir
from tests.goals.conftest import goal_cli, tree
from tests.goals.support import GoalModel, chain, make_repo, run_git
from tests.support.scripted_model import ScriptedModel

REPO_ROOT = Path(__file__).resolve().parents[2]
GOAL = "Grow the package step by step"


def goal_runs(repo: Path) -> list[dict]:
    path = workspace_cache_dir(repo) / "tasks.sqlite"
    if not path.exists():
        return []
    db = sqlite3.connect(path, timeout=5)
    try:
        rows = db.execute("SELECT meta FROM runs WHERE fingerprint = 'goal'").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()
    return [json.loads(row[0]) for row in rows]


def researched(hook: GoalModel) -> list[str]:
    return [key for role, key in hook.calls if role == "researcher"]


def branch_tree(repo: Path, branch: str) -> str:
    return run_git(repo, "rev-parse", f"{branch}^{{tree}}").strip()


@pytest.mark.slow
def test_kill_9_mid_step_then_resume(repo: Path, tmp_path: Path, monkeypatch) -> None:
    user_tree = tree(repo)
    plan = chain(8)
    # s5's coder answers slowly: the kill lands while s5 is in flight.
    hook = GoalModel(plan, coder_delay_ms={"s5": 5000})
    with ScriptedModel(hook=hook) as model:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        proc = subprocess.Popen(
            [sys.executable, "-m", "lsp_agent", "goal", GOAL],
            cwd=repo,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while ("coder", "s5") not in hook.calls:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "step s5 never started"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        [ledger] = goal_runs(repo)
        assert ledger["state"] == "running"  # killed: nobody wrote an end state
        branch, run_id = ledger["branch"], ledger["run_id"]
        committed = run_git(repo, "log", "--format=%B", f"{ledger['base_commit']}..{branch}")
        before_kill = [
            line.split(": ")[1] for line in committed.splitlines() if "Lsp-Agent-Step" in line
        ]
        assert sorted(before_kill) == ["s1", "s2", "s3", "s4"]
        # Nothing half-written: the run's tree holds whole files only; the user's is untouched.
        run_tree = workspace_cache_dir(repo) / "goals" / run_id / "tree"
        for path in run_tree.rglob("*.py"):
            compile(path.read_text(), str(path), "exec")
        assert tree(repo) == user_tree

        calls_before = len(hook.calls)
        hook.coder_delay_ms = {}
        resumed = goal_cli(["--resume", run_id, "--json"], repo, monkeypatch)
    assert resumed.code == 0, resumed.err
    report = json.loads(resumed.out)
    assert report["state"] == "succeeded"
    second = [key for role, key in hook.calls[calls_before:] if role == "researcher"]
    assert not set(second) & set(before_kill), "a committed step ran again"
    assert sorted(second) == ["s5", "s6", "s7", "s8"]
    assert run_git(run_tree, "status", "--porcelain") == ""
    assert tree(repo) == user_tree

    # The same goal uninterrupted, on an identical repository, ends on the same tree.
    other = make_repo(tmp_path / "other")
    with ScriptedModel(hook=GoalModel(plan)) as model:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        straight = goal_cli([GOAL, "--json"], other, monkeypatch)
    assert straight.code == 0, straight.err
    assert branch_tree(repo, branch) == branch_tree(other, json.loads(straight.out)["branch"])


def test_budget_stop_at_a_step_boundary_then_resume(repo: Path, monkeypatch) -> None:
    hook = GoalModel(chain(6))
    with ScriptedModel(hook=hook) as model:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        first = goal_cli([GOAL, "--json", "--budget-tokens", "12000"], repo, monkeypatch)
        assert first.code == 1, first.err
        stopped = json.loads(first.out)
        assert stopped["state"] == "budget_stopped"
        assert "token budget reached" in stopped["reason"]
        done = [s["key"] for s in stopped["steps"] if s["state"] == "done"]
        assert 1 <= len(done) < 6
        tokens = stopped["tokens"]["prompt"] + stopped["tokens"]["completion"]
        assert tokens >= 12000
        # Stopped at a boundary: every done step is committed, the tree is clean.
        log = run_git(repo, "log", "--format=%s", f"{stopped['baseCommit']}..{stopped['branch']}")
        assert len(log.splitlines()) == len(done)

        status = goal_cli(["--status", stopped["runId"], "--json"], repo, monkeypatch)
        assert json.loads(status.out)["state"] == "budget_stopped"

        calls_before = len(hook.calls)
        more = ["--resume", stopped["runId"], "--budget-tokens", "10000000", "--json"]
        second = goal_cli(more, repo, monkeypatch)
    assert second.code == 0, second.err
    report = json.loads(second.out)
    assert report["state"] == "succeeded"
    assert report["budgets"]["tokens"] == 10000000
    rerun = [key for role, key in hook.calls[calls_before:] if role == "researcher"]
    assert not set(rerun) & set(done)
    assert len(report["steps"]) == 6 and all(s["state"] == "done" for s in report["steps"])


def test_resume_of_a_finished_run_is_refused(repo: Path, monkeypatch) -> None:
    with ScriptedModel(hook=GoalModel(chain(1))) as model:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        run = goal_cli([GOAL, "--json"], repo, monkeypatch)
        again = goal_cli(["--resume", json.loads(run.out)["runId"]], repo, monkeypatch)
        unknown = goal_cli(["--resume", "g-000000000000"], repo, monkeypatch)
    assert again.code == 2 and "is succeeded" in again.err
    assert unknown.code == 2 and "no goal run" in unknown.err
