"""Goal runs from an editor, against the real server over stdio: lspAgent.runGoal with one
cancellable work-done progress whose messages name the steps, the run and its steps in
lspAgent/tasks, lspAgent.applyGoal as one workspace/applyEdit, lspAgent.cancelGoal."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcInvalidParams

from tests.goals.support import FAST, GoalModel, chain, make_repo, write_user_config
from tests.server.conftest import server_env
from tests.server.lsp_helpers import REPO_ROOT, apply_text_edits, start_server, stop_server
from tests.support.scripted_model import ScriptedModel


def plain(value: Any) -> Any:
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


async def runs(sut: Any) -> list[dict[str, Any]]:
    result = await sut.client.protocol.send_request_async("lspAgent/tasks", {})
    return plain(result)["runs"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    write_user_config(tmp_path / "config", FAST)
    return server_env(tmp_path)


async def test_run_goal_progress_tasks_and_apply(tmp_path: Path, env: dict[str, str]) -> None:
    repo = make_repo(tmp_path / "repo")
    before = {p: p.read_bytes() for p in repo.rglob("*.py")}
    with ScriptedModel(hook=GoalModel(chain(3))) as model:
        sut = await start_server(repo, env={**env, "LSP_AGENT_BASE_URL": model.url})
        try:
            started = await sut.command("lspAgent.runGoal", {"goal": "Three steps"})
            run_id = started.runId if hasattr(started, "runId") else started["runId"]
            token = f"lsp-agent/goal/{run_id}"
            await sut.wait_for(lambda: "end" in sut.progress_kinds(token), "the run's end")
            reports = sut.client.progress_reports[token]
            assert reports[0].kind == "begin" and reports[0].cancellable is True
            messages = [getattr(r, "message", "") or "" for r in reports]
            for key in ("s1", "s2", "s3"):
                assert any(m.startswith(f"step {key} ") for m in messages), messages
            assert "succeeded" in messages[-1]

            [run] = [r for r in await runs(sut) if r["runId"] == run_id]
            assert run["state"] == "succeeded" and (run["done"], run["total"]) == (3, 3)
            assert [s["key"] for s in run["steps"]] == ["s1", "s2", "s3"]
            assert all(s["commit"] for s in run["steps"])
            assert set(before) == set(repo.rglob("*.py"))  # no new file in the user tree

            applied = plain(await sut.command("lspAgent.applyGoal", {"runId": run_id}))
            assert applied["applied"] is True, applied
            [edit] = sut.edits
            assert edit.label == "lsp-agent: goal: Three steps"
            created = {}
            for change in edit.edit.document_changes:
                if hasattr(change, "edits"):
                    path = change.text_document.uri.rsplit("/repo/", 1)[1]
                    created[path] = apply_text_edits("", change.edits)
            assert created == {f"pkg/step_{n:02d}.py": f"STEP_s{n} = {n}\n" for n in (1, 2, 3)}
            assert {p: p.read_bytes() for p in repo.rglob("*.py")} == before
        finally:
            await stop_server(sut)


async def test_cancel_goal_leaves_a_resumable_run(tmp_path: Path, env: dict[str, str]) -> None:
    repo = make_repo(tmp_path / "repo")
    hook = GoalModel(chain(2), coder_delay_ms={"s1": 20000})
    with ScriptedModel(hook=hook) as model:
        sut = await start_server(repo, env={**env, "LSP_AGENT_BASE_URL": model.url})
        try:
            started = plain(await sut.command("lspAgent.runGoal", {"goal": "Two steps"}))
            run_id = started["runId"]
            await sut.wait_for(lambda: ("coder", "s1") in hook.calls, "step s1's coder")
            cancelled = plain(await sut.command("lspAgent.cancelGoal", {"runId": run_id}))
            assert cancelled["cancelled"] is True
            token = f"lsp-agent/goal/{run_id}"
            await sut.wait_for(lambda: "end" in sut.progress_kinds(token), "the run's end")
            [run] = [r for r in await runs(sut) if r["runId"] == run_id]
            assert run["state"] == "cancelled" and run["done"] == 0
            hook.coder_delay_ms = {}
            again = plain(await sut.command("lspAgent.runGoal", {"resume": run_id}))
            assert again["runId"] == run_id
            resumed = token + "#2"
            await sut.wait_for(lambda: "end" in sut.progress_kinds(resumed), "the resumed end")
            [run] = [r for r in await runs(sut) if r["runId"] == run_id]
            assert run["state"] == "succeeded"
            with pytest.raises(JsonRpcInvalidParams, match="no goal"):
                await sut.command("lspAgent.runGoal", {})
            with pytest.raises(JsonRpcInvalidParams, match="no goal run"):
                await sut.command("lspAgent.applyGoal", {"runId": "g-nope"})
        finally:
            await stop_server(sut)
    assert os.path.exists(repo / "pkg" / "core.py")


async def test_the_server_resumes_a_run_whose_process_was_killed(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal
    import subprocess
    import sys

    from tests.goals.test_resume import goal_runs

    repo = make_repo(tmp_path / "repo")
    hook = GoalModel(chain(3), coder_delay_ms={"s2": 20000})
    with ScriptedModel(hook=hook) as model:
        run_env = {**env, "LSP_AGENT_BASE_URL": model.url, "PYTHONPATH": str(REPO_ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "lsp_agent", "goal", "Three steps"],
            cwd=repo,
            env={**os.environ, **run_env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while ("coder", "s2") not in hook.calls:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        hook.coder_delay_ms = {}
        monkeypatch.setenv("LSP_AGENT_CACHE_DIR", env["LSP_AGENT_CACHE_DIR"])  # the same journal
        [ledger] = goal_runs(repo)
        assert ledger["state"] == "running"
        calls_before = len(hook.calls)
        sut = await start_server(repo, env=run_env)
        try:
            token = f"lsp-agent/goal/{ledger['run_id']}"
            await sut.wait_for(lambda: "end" in sut.progress_kinds(token), "the resumed run's end")
            [run] = [r for r in await runs(sut) if r["runId"] == ledger["run_id"]]
            assert run["state"] == "succeeded" and run["done"] == 3
            assert any("resuming goal run" in m for m in sut.messages())
        finally:
            await stop_server(sut)
    rerun = [key for role, key in hook.calls[calls_before:] if role == "researcher"]
    assert rerun == ["s2", "s3"]  # s1 was committed before the kill: it did not run again
