"""`lsp-agent tasks --manifest TASK_ID`: a finished task's snapshot and, per request, what went
in — read from the journal by a fresh process, long after the run that made it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lsp_agent.config import workspace_cache_dir
from lsp_agent.tasks.journal import TaskJournal
from tests.batch.conftest import run_in_process, run_subprocess
from tests.support.scripted_model import ScriptedModel


def test_manifest_shows_each_request_of_a_finished_task(
    repo: Path, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_in_process(["refactor", "Add a review header", "web/app.js"], repo, monkeypatch)
    assert run.code == 0, run.err
    with TaskJournal(workspace_cache_dir(repo) / "tasks.sqlite") as journal:
        [task] = journal.list()
    journaled = task.result["requests"]
    assert len(journaled) == len(model.requests) == 3

    shown = run_subprocess(["tasks", "--manifest", task.id, "--json"], repo)
    assert shown.code == 0, shown.err
    data = json.loads(shown.out)
    assert data["taskId"] == task.id and data["state"] == "succeeded"
    assert data["requests"] == journaled
    # The snapshot the task was given (journaled summary: totals, tiers, tail entries).
    assert data["budget"] > 0 and data["prefix_tokens"] > 0
    assert sum(row["files"] for row in data["tiers"].values()) >= 5
    assert any(entry["path"] == "web/app.js" for entry in data["tail"])
    roles = [r["role"] for r in data["requests"]]
    assert roles == ["researcher", "coder", "reviewer"]
    for record in data["requests"]:
        assert 0 < record["prompt_tokens"] <= record["limit"]
        assert record["sections"]["snapshot"] > 0 and record["duplicated_tokens"] == 0
    # Every request after the first starts with the messages the first one sent.
    assert all(r["expected_cached_share"] > 0 for r in data["requests"][1:])
    totals = data["totals"]
    assert totals["requests"] == 3
    assert totals["prompt_tokens"] == sum(r["prompt_tokens"] for r in data["requests"])
    assert totals["duplicated_tokens"] == 0

    text = run_subprocess(["tasks", "--manifest", task.id], repo)
    assert text.code == 0, text.err
    lines = text.out.splitlines()
    assert lines[0].startswith("workspace root ")
    assert lines[1].startswith(f"task {task.id}  succeeded")
    assert lines[2].startswith(f"snapshot: {data['prefix_tokens'] + data['tail_tokens']:,} of a ")
    assert f"requests: 3; prompt tokens {totals['prompt_tokens']:,}" in text.out
    assert "  #2 coder-1 (coder) step 1: " in text.out
    assert "     sections: system " in text.out


def test_manifest_of_an_unknown_task_is_a_clear_error(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_in_process(["tasks", "--manifest", "t-000000000000"], repo, monkeypatch)
    assert run.code == 2 and not run.out
    assert "no task 't-000000000000' in the journal of" in run.err
    assert "Traceback" not in run.err
