"""`lsp-agent refactor` end to end against the scripted model: diff, apply, JSON, failures,
files changed underneath, exit codes, dry run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.batch.conftest import last_run, run_in_process, run_subprocess, tree
from tests.batch.support import FIXTURE_REPO, BatchModel, header_for
from tests.support.scripted_model import ScriptedModel

GOLDEN = FIXTURE_REPO.parent / "golden.diff"
SOURCES = [
    "geometry/report.py",
    "geometry/shapes.py",
    "tools/numbers.py",
    "tools/strings.py",
    "web/app.js",
]


def with_header(original: bytes, path: str) -> bytes:
    return (header_for(path) + "\n").encode() + original


def test_diff_output_matches_golden_and_writes_nothing(repo: Path, model: ScriptedModel) -> None:
    before = tree(repo)
    run = run_subprocess(["refactor", "Add a review header", "--jobs", "2"], repo)
    assert run.code == 0, run.err
    assert run.out == GOLDEN.read_text(encoding="utf-8")
    assert tree(repo) == before
    # 4 tasks (geometry/ is one cluster): researcher + reviewer each, one coder per file.
    assert len(model.requests) == 4 * 2 + len(SOURCES)
    assert "4/4 tasks ok" in run.err


def test_apply_changes_exactly_the_selected_files(
    repo: Path, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree(repo)
    run = run_in_process(
        ["refactor", "Add a review header", "tools", "web/*.js", "--apply"],
        repo,
        monkeypatch,
    )
    assert run.code == 0, run.err
    assert run.out == ""  # --apply prints no diff; the summary goes to stderr
    after = tree(repo)
    changed = sorted(p for p in after if after[p] != before.get(p))
    assert changed == ["tools/numbers.py", "tools/strings.py", "web/app.js"]
    for path in changed:
        assert after[path] == with_header(before[path], path)
    assert sorted(after) == sorted(before)  # no temp files left behind
    tasks = last_run(repo)
    assert [t.files for t in tasks] == [["tools/numbers.py"], ["tools/strings.py"], ["web/app.js"]]
    assert {str(t.state) for t in tasks} == {"applied"}
    first = tasks[0]
    assert first.usage["prompt_tokens"] > 0 and first.usage["requests"] == 3
    assert first.message == "applied to 1 file(s)"
    assert "3/3 tasks ok" in run.err


def test_file_changed_between_read_and_write_is_left_alone(
    repo: Path, hook: BatchModel, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    human = b"def double(value):\n    return value + value  # edited meanwhile\n"

    def edit_meanwhile(files: list[str]) -> None:
        if files == ["tools/numbers.py"]:
            (repo / "tools/numbers.py").write_bytes(human)

    hook.on_review = edit_meanwhile
    before = tree(repo)
    run = run_in_process(["refactor", "Add a review header", "--apply"], repo, monkeypatch)
    assert run.code == 1
    assert (repo / "tools/numbers.py").read_bytes() == human
    strings = "tools/strings.py"
    assert (repo / strings).read_bytes() == with_header(before[strings], strings)
    numbers = next(t for t in last_run(repo) if t.files == ["tools/numbers.py"])
    assert str(numbers.state) == "succeeded"
    assert numbers.result is not None
    assert numbers.result["apply"][0]["status"] == "changed_underneath"
    assert "changed underneath" in numbers.message
    assert "changed underneath" in run.err


def test_failing_task_exits_1_while_the_others_apply(
    repo: Path, hook: BatchModel, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook.fail = {"tools/strings.py"}
    before = tree(repo)
    run = run_in_process(["refactor", "Add a review header", "--apply"], repo, monkeypatch)
    assert run.code == 1
    tasks = last_run(repo)
    states = {t.files[0]: str(t.state) for t in tasks}
    assert states == {
        "geometry/report.py": "applied",
        "tools/numbers.py": "applied",
        "tools/strings.py": "failed",
        "web/app.js": "applied",
    }
    failed = next(t for t in tasks if str(t.state) == "failed")
    assert "model error" in failed.message
    after = tree(repo)
    assert after["tools/strings.py"] == before["tools/strings.py"]
    for path in SOURCES:
        if path != "tools/strings.py":
            assert after[path] == with_header(before[path], path)
    assert "tools/strings.py" in run.err and "3/4 tasks ok" in run.err


def test_no_model_configured_exits_2_naming_what_to_set(repo: Path) -> None:
    before = tree(repo)
    run = run_subprocess(["refactor", "Add a review header", "--apply"], repo)
    assert run.code == 2
    assert "set DEEPSEEK_API_KEY" in run.err and "LSP_AGENT_BASE_URL" in run.err
    assert "--dry-run" in run.err
    assert run.out == ""
    assert tree(repo) == before


def test_dry_run_calls_no_model_and_prints_the_plan(
    repo: Path, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_in_process(["refactor", "Add a review header", "--dry-run", "-v"], repo, monkeypatch)
    assert run.code == 0, run.err
    assert model.requests == []
    assert "tasks: 4" in run.out and "files: 5" in run.out
    assert "files: geometry/report.py, geometry/shapes.py" in run.out
    assert f"local at {model.url}" in run.out
    assert "total: ~" in run.out and "cost: unknown" in run.out  # a local model has no price
    assert "===== context for task" in run.out and "def circle_area" in run.out

    run = run_in_process(
        ["refactor", "Add a review header", "--dry-run", "--json", "--split", "file"],
        repo,
        monkeypatch,
    )
    plan = json.loads(run.out)
    assert model.requests == []
    assert [t["files"] for t in plan["tasks"]] == [[p] for p in SOURCES]
    assert plan["estimated_prompt_tokens"] == sum(t["total_prompt_tokens"] for t in plan["tasks"])
    assert plan["estimated_prompt_tokens"] > 0
    assert plan["context"]["prefix_tokens"] > 0


def test_dry_run_without_a_model_names_the_variable(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_in_process(["refactor", "x", "--dry-run"], repo, monkeypatch)
    assert run.code == 0
    assert "model: no model configured: set DEEPSEEK_API_KEY" in run.out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["refactor", "x", "missing.py"], "missing.py: no such file"),
        (["refactor", "x", ".", "../elsewhere"], "the PATHs are in different workspaces"),
        (["refactor", "x", "--root", ".", "../elsewhere"], "outside the workspace root"),
        (["refactor", "  "], "instruction is empty"),
        (["refactor", "x", "--jobs", "0"], "at least 1"),
    ],
)
def test_usage_errors_exit_2(
    repo: Path, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch, argv: list[str], needle: str
) -> None:
    (repo.parent / "elsewhere").mkdir(exist_ok=True)
    try:
        run = run_in_process(argv, repo, monkeypatch)
    except SystemExit as exc:  # argparse rejects --jobs 0 itself, with exit 2
        assert exc.code == 2
        return
    assert run.code == 2
    assert needle in run.err
    assert model.requests == []


def test_jobs_bound_the_tasks_in_flight(
    repo: Path, hook: BatchModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ScriptedModel(hook=hook, latency_ms=60) as server:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", server.url)
        run = run_in_process(
            ["refactor", "Add a review header", "--split", "file", "--jobs", "2"], repo, monkeypatch
        )
        assert run.code == 0, run.err
        # One-file tasks make one request at a time, so requests in flight == tasks in flight.
        assert server.max_overlap() == 2
        assert len(server.requests) == 15


def test_root_and_model_flags_override_settings(
    repo: Path, hook: BatchModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ScriptedModel(hook=hook) as server:  # no LSP_AGENT_BASE_URL: the flag alone
        plan = run_in_process(
            [
                "refactor",
                "x",
                "--root",
                "repo",
                "repo/tools",
                "--dry-run",
                "--json",
                "--base-url",
                server.url,
                "--model",
                "scripted-model",
                "--budget",
                "5000",
            ],
            tmp_path,
            monkeypatch,
        )
        assert plan.code == 0, plan.err
        data = json.loads(plan.out)
        assert data["root"] == str(repo.resolve())
        assert data["model"] == {"provider": "local", "model": "scripted-model"}
        assert data["budget"] == 5000 and data["context"]["budget"] == 5000
        assert data["files"] == ["tools/numbers.py", "tools/strings.py"]
        run = run_in_process(
            [
                "refactor",
                "Add a review header",
                "--root",
                "repo",
                "repo/web",
                "--base-url",
                server.url,
            ],
            tmp_path,
            monkeypatch,
        )
        assert run.code == 0, run.err
        assert "+++ b/web/app.js" in run.out and len(server.requests) == 3
