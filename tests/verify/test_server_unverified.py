"""An unverified task through the real server over stdio: the project's own pytest (real
bubblewrap) fails on the task's edit, the task ends ``unverified`` and nothing is sent; the
user's ``lspAgent.applyTask`` then applies it and the client receives the workspace/applyEdit."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types

from tests.agents.test_orchestrator import block, coder_rule, plan_rule
from tests.server.conftest import server_env
from tests.server.lsp_helpers import apply_text_edits, start_server, stop_server
from tests.server.task_helpers import edits_for, wait_state
from tests.support.scripted_model import ScriptedModel
from tests.verify.conftest import CALC, needs_bwrap, tree_digest

pytestmark = [needs_bwrap, pytest.mark.asyncio]

BREAK = block("calc.py", "    return a + b\n", "    return a - b\n")


async def test_unverified_task_applies_only_when_asked(project: Path, tmp_path: Path) -> None:
    before = tree_digest(project)
    rules = [
        plan_rule([{"path": "calc.py", "instructions": "rewrite add"}]),
        coder_rule("calc.py", BREAK),
    ]
    with ScriptedModel(rules) as model:
        env = server_env(tmp_path, LSP_AGENT_BASE_URL=model.url, LSP_AGENT_MODEL="scripted-model")
        # No debugger round: the first failing check ends the task.
        sut = await start_server(project, env=env, initialization_options={"verify": {"rounds": 0}})
        try:
            task_id = (await sut.run_task("calc.py", instruction="rewrite add"))["taskId"]
            assert await wait_state(sut, task_id, {"unverified", "failed", "succeeded"}) == (
                "unverified"
            )
            notice = await sut.wait_for(
                lambda: next((m for m in sut.messages() if task_id in m), None), "the notice"
            )
            assert "unverified" in notice and "nothing was applied" in notice
            assert f"lspAgent.applyTask {task_id}" in notice
            assert sut.edits == [], "an unverified result is not sent on its own"
            [task] = [t for t in await sut.tasks() if t["id"] == task_id]
            assert task["state"] == "unverified"
            assert not any(r for r in model.requests if "submit_review" in r.tool_names)

            answer = await sut.command("lspAgent.applyTask", {"taskId": task_id})
            assert answer["applied"] is True, answer
            [change] = edits_for(sut, "calc.py")
            assert isinstance(change, types.TextDocumentEdit)
            new_text = apply_text_edits(CALC, list(change.edits))
            assert "return a - b" in new_text and "return a + b" not in new_text
            [params] = sut.edits
            annotations = params.edit.change_annotations or {}
            assert any("Not verified" in (a.description or "") for a in annotations.values()), (
                annotations
            )
        finally:
            await stop_server(sut)
    # The server sent the edit to the editor; verification itself wrote nothing.
    assert tree_digest(project) == before
