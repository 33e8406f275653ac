"""Multi-root workspaces end to end: one index, journal and runner per workspace folder.

The server gets two folders, alpha/ and beta/, under a parent directory that is itself no folder.
Both folders hold a ``b1.py`` (same relative path, same function), so a task routed to the wrong
folder, or a buffer version taken from the other folder's document, shows up in the edit.
A third folder, gamma/, is added and removed with ``workspace/didChangeWorkspaceFolders``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.server.conftest import make_workspace, server_env
from tests.server.lsp_helpers import (
    ServerUnderTest,
    apply_text_edits,
    start_server,
    stop_server,
    workspace_folder,
)
from tests.server.task_helpers import APPROVE, coder_started, edit_rules, wait_state
from tests.support.scripted_model import ScriptedModel

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _source(name: str) -> str:
    return f"def {name}_value(x):\n    return x + 1\n\n\nLIMIT = 10\n"


GAMMA_GATE = threading.Event()


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModel]:
    rules = [
        *edit_rules("a1"),
        *edit_rules("b1"),
        *edit_rules("g1", GAMMA_GATE),
        APPROVE,
    ]
    with ScriptedModel(rules) as scripted:
        yield scripted
    GAMMA_GATE.set()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(module_tmp: Path, model: ScriptedModel) -> AsyncIterator[ServerUnderTest]:
    parent = module_tmp / "ws"
    make_workspace(parent / "alpha", {"a1.py": _source("a1"), "b1.py": _source("b1")})
    make_workspace(
        parent / "beta", {"b1.py": _source("b1"), "util.py": "def helper():\n    pass\n"}
    )
    make_workspace(parent / "gamma", {"g1.py": _source("g1")})
    (parent / "loose.py").write_text(_source("loose"))  # in the parent, in no folder
    env = server_env(module_tmp, LSP_AGENT_BASE_URL=model.url, LSP_AGENT_MODEL="scripted-model")
    sut = await start_server(parent, env=env, folders=[parent / "alpha", parent / "beta"])
    yield sut
    await stop_server(sut)


def _edits_to(sut: ServerUnderTest, path: str) -> list[types.TextDocumentEdit]:
    uri = sut.uri(path)
    return [
        change
        for params in sut.edits
        for change in params.edit.document_changes or []
        if isinstance(change, types.TextDocumentEdit) and change.text_document.uri == uri
    ]


def _all_edited_uris(sut: ServerUnderTest) -> set[str]:
    return {
        change.text_document.uri
        for params in sut.edits
        for change in params.edit.document_changes or []
        if isinstance(change, types.TextDocumentEdit)
    }


def _folders_event(
    added: list[Path] = (), removed: list[Path] = ()
) -> types.DidChangeWorkspaceFoldersParams:  # type: ignore[assignment]
    return types.DidChangeWorkspaceFoldersParams(
        event=types.WorkspaceFoldersChangeEvent(
            added=[workspace_folder(p) for p in added],
            removed=[workspace_folder(p) for p in removed],
        )
    )


async def _context(sut: ServerUnderTest, path: str) -> Any:
    return await sut.client.protocol.send_request_async("lspAgent/context", {"uri": sut.uri(path)})


async def test_the_server_advertises_workspace_folder_changes(server: ServerUnderTest) -> None:
    assert server.init_result is not None
    folders = server.init_result.capabilities.workspace.workspace_folders
    assert folders.supported is True and folders.change_notifications is True


async def test_a_quick_fix_in_the_second_folder_edits_that_folders_file(
    server: ServerUnderTest,
) -> None:
    # Same relative path open in both folders, with different versions.
    server.open("alpha/b1.py", version=2)
    text = server.open("beta/b1.py", version=7)
    diagnostic = types.Diagnostic(
        range=types.Range(start=types.Position(0, 4), end=types.Position(0, 12)),
        message="name should say what it computes",
        severity=types.DiagnosticSeverity.Warning,
    )
    actions = await server.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=server.uri("beta/b1.py")),
            range=diagnostic.range,
            context=types.CodeActionContext(diagnostics=[diagnostic]),
        )
    )
    [fix] = [a for a in actions if a.kind == "quickfix"]
    assert fix.command.arguments[0]["version"] == 7  # beta's buffer, not alpha's b1.py
    result = await server.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=fix.command.command, arguments=fix.command.arguments)
    )
    task_id = result["taskId"]

    [doc_edit] = await server.wait_for(lambda: _edits_to(server, "beta/b1.py"), "beta's edit")
    assert doc_edit.text_document.version == 7
    assert apply_text_edits(text, doc_edit.edits) == text.replace("b1_value", "b1_plus_one")
    assert server.uri("alpha/b1.py") not in _all_edited_uris(server)
    assert await wait_state(server, task_id, {"applied"}) == "applied"
    # beta's index and snapshot served the task: its manifest lists beta's files only.
    manifest = await server.client.protocol.send_request_async(
        "lspAgent/context", {"taskId": task_id}
    )
    paths = {entry.path for entry in manifest.files}
    assert "util.py" in paths and "a1.py" not in paths


async def test_tasks_lists_the_tasks_of_every_folder(server: ServerUnderTest) -> None:
    text = server.open("alpha/a1.py", version=4)
    result = await server.run_task("alpha/a1.py", version=4, preset="simplify")
    alpha_task = result["taskId"]
    await wait_state(server, alpha_task, {"applied"})
    [doc_edit] = _edits_to(server, "alpha/a1.py")
    assert doc_edit.text_document.version == 4
    assert apply_text_edits(text, doc_edit.edits) == text.replace("a1_value", "a1_plus_one")

    listed = {t["id"]: t for t in await server.tasks()}
    beta_tasks = [t for t in listed.values() if t["files"] == ["b1.py"]]
    assert alpha_task in listed and listed[alpha_task]["files"] == ["a1.py"]
    assert beta_tasks and all(t["state"] == "applied" for t in beta_tasks)


async def test_apply_task_sends_a_rejected_result_to_its_own_folder(
    server: ServerUnderTest,
) -> None:
    """lspAgent.applyTask finds the task in beta's journal and edits beta's buffer."""
    before = len(_edits_to(server, "beta/b1.py"))
    server.accept_edits = False
    try:
        task_id = (await server.run_task("beta/b1.py", version=7, preset="simplify"))["taskId"]
        await wait_state(server, task_id, {"rejected"})
    finally:
        server.accept_edits = True
    outcome = await server.command("lspAgent.applyTask", {"taskId": task_id})
    assert outcome["applied"] is True and outcome["state"] == "applied"
    retried = _edits_to(server, "beta/b1.py")[before:]
    assert len(retried) == 2  # the refused one, then the applied one
    assert all(e.text_document.version == 7 for e in retried)
    assert server.uri("alpha/b1.py") not in _all_edited_uris(server)


async def test_a_file_in_no_folder_gets_no_actions_and_a_clear_refusal(
    server: ServerUnderTest,
) -> None:
    server.open("loose.py")
    actions = await server.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=server.uri("loose.py")),
            range=types.Range(start=types.Position(0, 0), end=types.Position(1, 0)),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    assert not actions
    with pytest.raises(JsonRpcException, match="outside the workspace"):
        await server.run_task("loose.py", preset="simplify")
    with pytest.raises(JsonRpcException, match="outside the workspace"):
        await _context(server, "loose.py")


async def test_an_added_folder_is_indexed_and_a_removed_one_stops(
    server: ServerUnderTest, model: ScriptedModel
) -> None:
    gamma = server.root / "gamma"
    with pytest.raises(JsonRpcException, match="outside the workspace"):
        await _context(server, "gamma/g1.py")

    server.client.workspace_did_change_workspace_folders(_folders_event(added=[gamma]))
    manifest = await _context(server, "gamma/g1.py")  # waits for gamma's index
    assert "g1.py" in {entry.path for entry in manifest.files}
    token = f"lsp-agent/index/{server.uri('gamma')}"
    kinds = server.progress_kinds(token)
    assert kinds[0] == "begin" and kinds[-1] == "end"

    # A task in gamma held inside the coder; removing gamma cancels it, nothing is applied.
    server.open("gamma/g1.py", version=3)
    task_id = (await server.run_task("gamma/g1.py", version=3, preset="simplify"))["taskId"]
    await server.wait_for(lambda: coder_started(model, "g1.py"), "gamma's coder")
    server.client.workspace_did_change_workspace_folders(_folders_event(removed=[gamma]))

    async def gone() -> bool:
        return task_id not in {t["id"] for t in await server.tasks()}

    await server.wait_for_async(gone, "gamma's task to leave the list")
    with pytest.raises(JsonRpcException, match="outside the workspace"):
        await _context(server, "gamma/g1.py")
    GAMMA_GATE.set()  # the model answers now; the server must not apply it

    # Adding gamma back: its journal recorded the task as cancelled.
    server.client.workspace_did_change_workspace_folders(_folders_event(added=[gamma]))
    assert await wait_state(server, task_id, {"cancelled"}) == "cancelled"
    await server.wait_for(lambda: "end" in server.progress_kinds(f"{token}#2"), "re-indexing")
    assert not _edits_to(server, "gamma/g1.py")
    # The other folders carry on.
    assert (await _context(server, "beta/util.py")).files
