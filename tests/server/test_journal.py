"""Other clients (no applyEdit/progress, lazy code actions), ``$/cancelRequest``, restarts.

A limited client (no applyEdit, no work-done progress, no workspace/configuration) waits on
``lspAgent.runTask`` and receives the edit in the result; the task stays journaled as
finished-but-unapplied. A second server on the same workspace and cache lists it and applies it
through ``lspAgent.applyTask``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import converters, types
from pygls.exceptions import JsonRpcException

from tests.server.conftest import make_workspace, server_env
from tests.server.lsp_helpers import (
    WAIT_S,
    apply_text_edits,
    full_capabilities,
    start_server,
    stop_server,
)
from tests.server.task_helpers import APPROVE, coder_started, edit_rules, edits_for, wait_state
from tests.support.scripted_model import ScriptedModel

pytestmark = pytest.mark.asyncio(loop_scope="module")

TEXT = {name: f"def {name}_value(x):\n    return x * 2\n" for name in ("p", "q", "r")}
LIMITED = types.ClientCapabilities()  # nothing: no applyEdit, no progress, no configuration
GATE_Q = threading.Event()
GATE_R = threading.Event()


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModel]:
    rules = [*edit_rules("p"), *edit_rules("q", GATE_Q), *edit_rules("r", GATE_R), APPROVE]
    with ScriptedModel(rules) as scripted:
        yield scripted
    GATE_Q.set()
    GATE_R.set()


@pytest.fixture(scope="module")
def workspace(module_tmp: Path) -> Path:
    return make_workspace(module_tmp / "ws", {f"{n}.py": t for n, t in TEXT.items()})


def _env(module_tmp: Path, model: ScriptedModel) -> dict[str, str]:
    return server_env(module_tmp, LSP_AGENT_BASE_URL=model.url, LSP_AGENT_MODEL="scripted-model")


async def test_limited_client_gets_the_edit_and_a_restart_can_apply_it(
    module_tmp: Path, workspace: Path, model: ScriptedModel
) -> None:
    env = _env(module_tmp, model)
    limited = await start_server(workspace, env=env, capabilities=LIMITED)
    try:
        result: dict[str, Any] = await limited.run_task("p.py", preset="simplify")
        task_id = result["taskId"]
        assert result["state"] == "succeeded" and result["applied"] is False
        edits = [
            converters.get_converter().structure(e, types.TextEdit)
            for e in result["edit"]["changes"][limited.uri("p.py")]
        ]
        assert apply_text_edits(TEXT["p"], edits) == TEXT["p"].replace("p_value", "p_plus_one")
        assert any("cannot apply edits" in m for m in limited.messages())
        assert not limited.client.progress_reports.get(f"lsp-agent/{task_id}")
        assert limited.edits == []  # a client without workspace/applyEdit is never sent one
    finally:
        await stop_server(limited)

    again = await start_server(workspace, env=env)
    try:
        [row] = [t for t in await again.tasks() if t["id"] == task_id]
        assert row["state"] == "succeeded" and row["files"] == ["p.py"]
        text = again.open("p.py", version=5)
        outcome = await again.command("lspAgent.applyTask", {"taskId": task_id})
        assert outcome == {"taskId": task_id, "state": "applied", "applied": True}
        [doc_edit] = edits_for(again, "p.py")
        assert doc_edit.text_document.version == 5
        assert apply_text_edits(text, doc_edit.edits) == text.replace("p_value", "p_plus_one")
        assert await wait_state(again, task_id, {"applied"}) == "applied"
        # Applied once: a second apply is refused with a reason, and sends nothing.
        second = await again.command("lspAgent.applyTask", {"taskId": task_id})
        assert second["applied"] is False and "applied" in second["error"]
        assert len(again.edits) == 1
        with pytest.raises(JsonRpcException, match="no task 't-000000000000'"):
            await again.command("lspAgent.applyTask", {"taskId": "t-000000000000"})
    finally:
        await stop_server(again)


async def test_cancel_request_on_a_waiting_run_task_cancels_the_task(
    module_tmp: Path, workspace: Path, model: ScriptedModel
) -> None:
    limited = await start_server(workspace, env=_env(module_tmp, model), capabilities=LIMITED)
    try:
        argument = {"uri": limited.uri("q.py"), "preset": "docstrings"}
        msg_id, answer = limited.raw_request_start(
            "workspace/executeCommand", {"command": "lspAgent.runTask", "arguments": [argument]}
        )
        await limited.wait_for(lambda: coder_started(model, "q.py"), "the coder request")
        limited.client.protocol.notify("$/cancelRequest", types.CancelParams(id=msg_id))
        with pytest.raises(JsonRpcException) as info:
            await asyncio.wait_for(answer, WAIT_S)
        assert info.value.code == -32800  # RequestCancelled
        tasks = await limited.tasks()
        [row] = [t for t in tasks if t["files"] == ["q.py"]]
        assert await wait_state(limited, row["id"], {"cancelled"}) == "cancelled"
        GATE_Q.set()
        assert not edits_for(limited, "q.py")
    finally:
        await stop_server(limited)


async def test_shutdown_cancels_running_tasks_and_journals_them(
    module_tmp: Path, workspace: Path, model: ScriptedModel
) -> None:
    env = _env(module_tmp, model)
    first = await start_server(workspace, env=env)
    task_id = (await first.run_task("r.py", preset="simplify"))["taskId"]
    await first.wait_for(lambda: coder_started(model, "r.py"), "the coder request")
    await stop_server(first)  # shutdown while the coder is still inside the model
    GATE_R.set()
    assert not edits_for(first, "r.py")
    again = await start_server(workspace, env=env)
    try:
        [row] = [t for t in await again.tasks() if t["id"] == task_id]
        assert row["state"] == "cancelled"
        assert not edits_for(again, "r.py")  # a cancelled task is never applied after a restart
    finally:
        await stop_server(again)


async def test_lazy_clients_get_the_command_on_resolve(module_tmp: Path, workspace: Path) -> None:
    capabilities = full_capabilities()
    capabilities.text_document.code_action.resolve_support.properties = ["command"]
    sut = await start_server(workspace, env=server_env(module_tmp), capabilities=capabilities)
    try:
        sut.open("p.py", version=2)
        start, end = types.Position(line=0, character=0), types.Position(line=1, character=0)
        actions = await sut.client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=sut.uri("p.py")),
                range=types.Range(start=start, end=end),
                context=types.CodeActionContext(diagnostics=[]),
            )
        )
        assert actions and all(a.command is None and a.data for a in actions)
        resolved = await sut.client.code_action_resolve_async(actions[0])
        assert resolved.command.command == "lspAgent.runTask"
        argument = resolved.command.arguments[0]
        assert argument["preset"] == "simplify" and argument["version"] == 2
    finally:
        await stop_server(sut)
