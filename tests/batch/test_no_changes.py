"""A run that changes nothing is not a success, and SIGTERM keeps what a run spent (issue 17)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lsp_agent.batch.report import EXIT_NO_CHANGES
from lsp_agent.config import workspace_cache_dir
from lsp_agent.tasks.journal import TaskJournal
from lsp_agent.tasks.model import TaskState
from tests.batch.conftest import REPO_ROOT, run_in_process, tree
from tests.support.scripted_model import ScriptedModel

REASON = "every function already has a docstring"


def plan_reply(notes: str) -> dict[str, object]:
    args = {"targets": [], "notes": notes}
    return {"tool_calls": [{"name": "submit_plan", "arguments": args}]}


def test_an_empty_plan_exits_3_with_its_reason(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = [
        {"match": {"has_tool": "submit_plan"}, "reply": plan_reply("1"), "times": 1},
        {"match": {"has_tool": "submit_plan"}, "reply": plan_reply(REASON)},
    ]
    before = tree(repo)
    with ScriptedModel(rules) as server:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", server.url)
        run = run_in_process(
            ["refactor", "Add docstrings", "tools/numbers.py", "--json"], repo, monkeypatch
        )
        applied = run_in_process(
            ["refactor", "Add docstrings", "tools/numbers.py", "--apply"], repo, monkeypatch
        )
    assert run.code == EXIT_NO_CHANGES == 3
    report = json.loads(run.out)
    [task] = report["tasks"]
    assert task["state"] == "no_changes" and not task["ok"] and task["error"] is None
    assert task["reason"] == f"no change needed: {REASON}"
    assert report["totals"]["no_changes"] == 1 and report["totals"]["failed"] == 0
    assert report["exit_code"] == 3
    assert "0/1 tasks ok, 1 changed nothing" in run.err and REASON in run.err
    assert applied.code == 3 and REASON in applied.err
    assert tree(repo) == before  # --apply wrote nothing


def test_sigterm_flushes_the_transcript_and_journals_what_was_spent(repo: Path) -> None:
    # The researcher's first call succeeds; the second hangs until the run is terminated.
    rules = [
        {
            "match": {"has_tool": "submit_plan", "last_role": "user"},
            "reply": {
                "tool_calls": [{"name": "list_files", "arguments": {}}],
                "usage": {"prompt_tokens": 1500, "completion_tokens": 20},
            },
        },
        {"match": {"has_tool": "submit_plan"}, "reply": {"content": "late"}, "delay_ms": 30_000},
    ]
    with ScriptedModel(rules) as server:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LSP_AGENT_BASE_URL": server.url}
        proc = subprocess.Popen(
            [sys.executable, "-m", "lsp_agent", "refactor", "Add docstrings", "tools/numbers.py"],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while len(server.requests) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(server.requests) == 2, "the run never reached its second request"
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 143, err
    assert "terminated" in err and "--resume" in err
    cache = workspace_cache_dir(repo)
    with TaskJournal(cache / "tasks.sqlite") as journal:
        [task] = journal.list()
    assert task.state is TaskState.CANCELLED
    # 1,520 reported by the server, plus an estimate for the request cut short under it.
    assert task.usage["prompt_tokens"] > 1500 and task.usage["estimated_tokens"] > 0
    assert task.usage["attempts"] == 2 and task.usage["requests"] == 1
    [transcript] = (cache / "transcripts").glob("*.jsonl")
    events = [json.loads(line) for line in transcript.read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "task" and "reply" in names and "cancelled_request" in names
    assert names[-1] == "cancelled"
    assert events[-1]["usage"]["prompt_tokens"] == task.usage["prompt_tokens"]
