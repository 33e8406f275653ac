"""A batch run killed with SIGKILL mid-run leaves no half-written file, and --resume finishes
it without redoing the tasks that had finished (counted at the scripted model)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lsp_agent.config import workspace_cache_dir
from tests.batch.conftest import REPO_ROOT, run_in_process, run_subprocess, tree
from tests.batch.support import BatchModel, header_for
from tests.support.scripted_model import ScriptedModel

SOURCES = [
    "geometry/report.py",
    "geometry/shapes.py",
    "tools/numbers.py",
    "tools/strings.py",
    "web/app.js",
]
DONE = ("succeeded", "no_changes", "applied")
ARGV = ["refactor", "Add a review header", "--apply", "--jobs", "1", "--split", "file"]


def journal_states(repo: Path) -> dict[str, str]:
    path = workspace_cache_dir(repo) / "tasks.sqlite"
    if not path.exists():
        return {}
    db = sqlite3.connect(path, timeout=5)
    try:
        return dict(db.execute("SELECT key, state FROM tasks").fetchall())
    except sqlite3.OperationalError:  # the schema is not created yet
        return {}
    finally:
        db.close()


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_redoes_only_unfinished_tasks(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree(repo)
    with ScriptedModel(hook=BatchModel(repo), latency_ms=150) as model:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        proc = subprocess.Popen(
            [sys.executable, "-m", "lsp_agent", *ARGV],
            cwd=repo,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while sum(s == "applied" for s in journal_states(repo).values()) < 2:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no task finished in time"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        time.sleep(0.3)  # let the server record a request that was on the wire
        first_run = len(model.requests)
        states = journal_states(repo)
        unfinished = [key for key in SOURCES if states.get(key) not in DONE]
        assert 1 <= len(unfinished) <= 3

        # Nothing half-written: every file is either as it was or fully changed.
        middle = tree(repo)
        for path in SOURCES:
            assert middle[path] in (before[path], (header_for(path) + "\n").encode() + before[path])
        assert sorted(middle) == sorted(before)

        run = run_subprocess([*ARGV, "--resume"], repo)
        assert run.code == 0, run.err
        resumed_requests = len(model.requests) - first_run
    # researcher + coder + reviewer for each task that had not finished, nothing for the rest
    assert resumed_requests == 3 * len(unfinished)
    assert set(journal_states(repo).values()) == {"applied"}
    after = tree(repo)
    for path in SOURCES:
        assert after[path] == (header_for(path) + "\n").encode() + before[path]


def test_resume_without_an_earlier_run_starts_afresh(
    repo: Path, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_in_process(
        ["refactor", "Add a review header", "tools", "--resume"], repo, monkeypatch
    )
    assert run.code == 0, run.err
    assert "no earlier run" in run.err
    assert len(model.requests) == 6
    # A second --resume of the finished run calls no model and prints the same diff again.
    again = run_in_process(
        ["refactor", "Add a review header", "tools", "--resume"], repo, monkeypatch
    )
    assert again.code == 0 and again.out == run.out and len(model.requests) == 6
    # Without --resume the same command is a new run.
    run_in_process(["refactor", "Add a review header", "tools"], repo, monkeypatch)
    assert len(model.requests) == 12


def test_review_the_diff_then_apply_it_with_resume(
    repo: Path, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree(repo)
    diff = run_in_process(["refactor", "Add a review header", "tools"], repo, monkeypatch)
    assert diff.code == 0 and tree(repo) == before
    asked = len(model.requests)
    applied = run_in_process(
        ["refactor", "Add a review header", "tools", "--apply", "--resume"], repo, monkeypatch
    )
    assert applied.code == 0, applied.err
    assert len(model.requests) == asked  # the journaled results were applied, no model call
    for path in ("tools/numbers.py", "tools/strings.py"):
        assert (repo / path).read_bytes() == (header_for(path) + "\n").encode() + before[path]
