"""`lsp-agent fix` with real ruff output, and `lsp-agent tasks` over the shared journal."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_agent.config import workspace_cache_dir
from lsp_agent.tasks.journal import TaskJournal
from lsp_agent.tasks.model import Task, TaskState
from tests.batch.conftest import last_run, run_in_process
from tests.batch.support import role_of
from tests.support.scripted_model import ScriptedModel

RUFF = Path(sys.executable).with_name("ruff")


def ruff_json(repo: Path) -> str:
    proc = subprocess.run(
        [
            str(RUFF),
            "check",
            "--no-cache",
            "--isolated",
            "--select",
            "F401",
            "--output-format",
            "json",
            ".",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.stdout


def test_fix_runs_one_task_per_file_with_its_diagnostics(
    repo: Path, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    strings = repo / "tools" / "strings.py"
    strings.write_text("import os\nimport sys\n\n\n" + strings.read_text())
    (repo / "diagnostics.json").write_text(ruff_json(repo))
    run = run_in_process(["fix", "--diagnostics", "diagnostics.json", "--apply"], repo, monkeypatch)
    assert run.code == 0, run.err
    tasks = last_run(repo)
    assert [t.files for t in tasks] == [["tools/strings.py"]]
    assert tasks[0].title == "Fix 2 diagnostics in tools/strings.py"
    research = next(r for r in model.requests if role_of(r.body) == "researcher")
    task_message = research.messages[2]["content"]
    assert "Kind: fix" in task_message
    assert "F401" in task_message and "`os` imported but unused" in task_message
    assert strings.read_text().startswith('"""Reviewed by lsp-agent: tools/strings.py."""\n')


def test_fix_paths_restrict_the_files_and_bad_input_exits_2(
    repo: Path, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    for rel in ("tools/strings.py", "tools/numbers.py"):
        path = repo / rel
        path.write_text("import os\n" + path.read_text())
    (repo / "d.json").write_text(ruff_json(repo))
    run = run_in_process(
        ["fix", "tools/numbers.py", "--diagnostics", "d.json", "--dry-run", "--json"],
        repo,
        monkeypatch,
    )
    assert run.code == 0, run.err
    assert [t["files"] for t in json.loads(run.out)["tasks"]] == [["tools/numbers.py"]]
    (repo / "bad.json").write_text('{"not": "diagnostics"}')
    bad = run_in_process(["fix", "--diagnostics", "bad.json"], repo, monkeypatch)
    assert bad.code == 2 and "cannot tell the diagnostics format" in bad.err
    missing = run_in_process(["fix", "--diagnostics", "nope.json"], repo, monkeypatch)
    assert missing.code == 2 and "nope.json" in missing.err
    assert model.requests == []


def test_tasks_lists_batch_and_server_tasks(
    repo: Path, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = run_in_process(["tasks", "--json"], repo, monkeypatch)
    assert json.loads(empty.out)["tasks"] == []
    run_in_process(["refactor", "Add a review header", "web"], repo, monkeypatch)
    with TaskJournal(workspace_cache_dir(repo) / "tasks.sqlite") as journal:
        server_task = Task.new({"files": ["tools/numbers.py"]}, title="From the editor")
        server_task.state = TaskState.SUCCEEDED
        journal.record(server_task)
    listed = json.loads(run_in_process(["tasks", "--json"], repo, monkeypatch).out)["tasks"]
    assert [t["title"] for t in listed] == ["From the editor", "Add a review header: web/app.js"]
    batch = listed[1]
    assert batch["state"] == "succeeded" and batch["runId"].startswith("r-")
    assert batch["files"] == ["web/app.js"] and batch["tokens"] > 0
    assert listed[0]["runId"] is None
    text = run_in_process(["tasks"], repo, monkeypatch)
    assert server_task.id in text.out and "From the editor" in text.out
    (repo / ".lsp-agent.toml").write_text("[journal]\nkeep_tasks = 1\n")
    pruned = run_in_process(["tasks", "--prune"], repo, monkeypatch)
    assert "pruned 1 finished task(s)" in pruned.out
    left = json.loads(run_in_process(["tasks", "--json"], repo, monkeypatch).out)["tasks"]
    assert [t["title"] for t in left] == ["From the editor"]


def test_fix_with_no_diagnostics_reports_an_empty_run(
    repo: Path, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "clean.json").write_text(ruff_json(repo))  # the fixture has no F401
    run = run_in_process(["fix", "--diagnostics", "clean.json", "--json"], repo, monkeypatch)
    assert run.code == 0
    report = json.loads(run.out)
    assert report["tasks"] == [] and report["totals"]["tasks"] == 0
    assert "nothing to do" in run.err and model.requests == []


def test_fix_reads_lsp_diagnostics_from_stdin(
    repo: Path, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = {
        "uri": (repo / "web" / "app.js").as_uri(),
        "diagnostics": [
            {
                "range": {"start": {"line": 1, "character": 2}, "end": {"line": 1, "character": 8}},
                "severity": 2,
                "source": "eslint",
                "code": "prefer-template",
                "message": "Unexpected template",
            }
        ],
    }
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps([params])))
    run = run_in_process(["fix", "--diagnostics", "-", "--dry-run", "--json"], repo, monkeypatch)
    assert run.code == 0, run.err
    plan = json.loads(run.out)
    assert [t["files"] for t in plan["tasks"]] == [["web/app.js"]]
    assert plan["tasks"][0]["title"] == 'Fix "Unexpected template" in web/app.js'
    assert model.requests == []
