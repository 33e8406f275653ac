"""Code actions, settings fallbacks, malformed requests, and running a task with no model.

One server (no model configured, invalid initializationOptions) is shared by the module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.server.conftest import CALC, make_workspace, server_env
from tests.server.lsp_helpers import ServerUnderTest, start_server, stop_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

INVALID_OPTIONS = {"contextBudget": "lots", "confirmEdits": "maybe", "frobnicate": 1}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(module_tmp: Path) -> AsyncIterator[ServerUnderTest]:
    root = make_workspace(module_tmp / "ws", {"calc.py": CALC})
    sut = await start_server(
        root,
        env=server_env(module_tmp),
        initialization_options=INVALID_OPTIONS,
        configuration={"lspAgent": {"budgets": {"maxSteps": -3}}},
    )
    sut.open("calc.py", version=7)
    yield sut
    await stop_server(sut)


def _rng(a: int, b: int, c: int, d: int) -> types.Range:
    return types.Range(
        start=types.Position(line=a, character=b), end=types.Position(line=c, character=d)
    )


async def _actions(
    sut: ServerUnderTest,
    rng: types.Range,
    diagnostics: list[types.Diagnostic] = (),  # type: ignore[assignment]
    only: list[str] | None = None,
) -> list[types.CodeAction]:
    result = await sut.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=sut.uri("calc.py")),
            range=rng,
            context=types.CodeActionContext(diagnostics=list(diagnostics), only=only),
        )
    )
    assert result is not None
    assert all(isinstance(a, types.CodeAction) for a in result)
    return result  # type: ignore[return-value]


async def test_one_quickfix_per_diagnostic(server: ServerUnderTest) -> None:
    diags = [
        types.Diagnostic(range=_rng(0, 4, 0, 7), message="name 'add' shadows\nmore", source="lint"),
        types.Diagnostic(range=_rng(5, 11, 5, 14), message="unused call", code="X1"),
    ]
    actions = await _actions(server, _rng(0, 4, 0, 4), diags)
    fixes = [a for a in actions if a.kind == "quickfix"]
    assert [a.title for a in fixes] == [
        "Fix with lsp-agent: name 'add' shadows",
        "Fix with lsp-agent: unused call",
    ]
    assert [d.message for d in fixes[1].diagnostics] == ["unused call"]
    args = fixes[1].command.arguments[0]
    assert fixes[1].command.command == "lspAgent.runTask"
    assert args["uri"] == server.uri("calc.py")
    assert args["version"] == 7
    assert args["preset"] == "fix"
    assert args["range"] == {
        "start": {"line": 5, "character": 11},
        "end": {"line": 5, "character": 14},
    }
    assert [d["message"] for d in args["diagnostics"]] == ["unused call"]
    assert args["diagnostics"][0]["code"] == "X1"
    # An empty range: no refactor actions, the file-level source action stays.
    assert not [a for a in actions if a.kind == "refactor.rewrite"]
    assert [a.kind for a in actions if a.kind not in ("quickfix",)] == ["source.lspAgent"]


async def test_selection_offers_presets_and_free_instruction(server: ServerUnderTest) -> None:
    actions = await _actions(server, _rng(0, 0, 2, 0))
    rewrites = [a for a in actions if a.kind == "refactor.rewrite"]
    presets = [a.command.arguments[0]["preset"] for a in rewrites]
    assert presets == ["simplify", "typeHints", "docstrings", "extractFunction", None]
    free = rewrites[-1].command.arguments[0]
    assert free["needsInstruction"] is True and free["instruction"] is None
    assert free["range"]["end"] == {"line": 2, "character": 0}
    assert not [a for a in actions if a.kind == "quickfix"]


async def test_file_action_and_kind_filter(server: ServerUnderTest) -> None:
    actions = await _actions(server, _rng(0, 0, 2, 0), only=["source"])
    assert [a.kind for a in actions] == ["source.lspAgent"]
    args = actions[0].command.arguments[0]
    assert args["range"] is None and args["needsInstruction"] is True
    only_refactor = await _actions(server, _rng(0, 0, 2, 0), only=["refactor"])
    assert {a.kind for a in only_refactor} == {"refactor.rewrite"}
    outside = await server.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri="untitled:Untitled-1"),
            range=_rng(0, 0, 2, 0),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    assert not outside


async def test_resolve_fills_the_command(server: ServerUnderTest) -> None:
    bare = types.CodeAction(
        title="lsp-agent: Simplify",
        kind="refactor.rewrite",
        data={"title": "lsp-agent: Simplify", "arguments": {"uri": "u", "preset": "simplify"}},
    )
    resolved = await server.client.code_action_resolve_async(bare)
    assert resolved.command is not None
    assert resolved.command.command == "lspAgent.runTask"
    assert list(resolved.command.arguments) == [{"uri": "u", "preset": "simplify"}]


async def test_invalid_settings_warn_and_fall_back(server: ServerUnderTest) -> None:
    text = "\n".join(server.messages())
    assert "contextBudget" not in text  # settings are named the engine's way
    assert "context.budget must be a whole number" in text
    assert "confirm_edits must be true or false" in text
    assert "unknown setting 'frobnicate'" in text
    assert "budgets.max_steps must not be negative" in text  # from workspace/configuration
    # Still serving.
    assert await _actions(server, _rng(0, 0, 1, 0))


async def test_malformed_params_get_an_error_and_the_server_goes_on(
    server: ServerUnderTest,
) -> None:
    with pytest.raises(JsonRpcException) as info:
        await server.raw_request(
            types.TEXT_DOCUMENT_CODE_ACTION,
            {"textDocument": {"uri": server.uri("calc.py")}, "range": "everything"},
        )
    assert info.value.code == -32602
    with pytest.raises(JsonRpcException) as info:
        await server.command("lspAgent.runTask", {"uri": 42})
    assert "'uri' has the wrong type" in info.value.message
    with pytest.raises(JsonRpcException) as info:
        await server.run_task("calc.py", preset="shrink")
    assert "unknown preset 'shrink'" in info.value.message
    with pytest.raises(JsonRpcException) as info:
        await server.run_task("../outside.py", preset="simplify")
    assert "outside the workspace" in info.value.message
    with pytest.raises(JsonRpcException, match="no instruction"):
        await server.run_task("calc.py", needsInstruction=True)
    with pytest.raises(JsonRpcException):
        await server.client.protocol.send_request_async("lspAgent/context", {"uri": 3})
    assert await _actions(server, _rng(0, 0, 1, 0))


async def test_running_without_a_model_says_which_variable_to_set(
    server: ServerUnderTest,
) -> None:
    before = len(server.client.messages)
    result = await server.run_task("calc.py", preset="simplify", range=None)
    assert result["taskId"] is None
    assert "LSP_AGENT_BASE_URL" in result["error"]
    shown = await server.wait_for(
        lambda: [m for m in server.client.messages[before:] if "LSP_AGENT_BASE_URL" in m.message],
        "the no-model message",
    )
    assert shown[0].type == types.MessageType.Error


async def test_open_buffer_overrides_disk_in_the_index(server: ServerUnderTest) -> None:
    """A buffer that exists only in the editor is indexed; closing it returns to disk."""
    server.open("draft.py", version=1, text="def draft_helper(x):\n    return x\n")

    async def manifest_paths() -> list[str]:
        manifest = await server.client.protocol.send_request_async(
            "lspAgent/context", {"uri": server.uri("calc.py")}
        )
        return [entry.path for entry in manifest.files]

    paths: list[str] = []

    async def poll() -> bool:
        paths[:] = await manifest_paths()
        return "draft.py" in paths

    await server.wait_for_async(poll, "draft.py in the snapshot")
    assert "calc.py" in paths
    server.client.text_document_did_close(
        types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=server.uri("draft.py"))
        )
    )

    async def gone() -> bool:
        return "draft.py" not in await manifest_paths()

    await server.wait_for_async(gone, "draft.py to leave the snapshot")


async def test_files_changed_outside_the_editor_reach_the_index(server: ServerUnderTest) -> None:
    await server.wait_for(lambda: "end" in server.progress_kinds("lsp-agent/index"), "the index")
    assert server.client.progress_reports["lsp-agent/index"][0].title == "lsp-agent: indexing"
    (server.root / "generated.py").write_text("def made_by_codegen():\n    return 1\n")

    async def listed() -> bool:
        manifest = await server.client.protocol.send_request_async(
            "lspAgent/context", {"uri": server.uri("calc.py")}
        )
        return any(entry.path == "generated.py" for entry in manifest.files)

    await server.wait_for_async(listed, "the watcher to index generated.py")


async def test_no_actions_where_a_task_can_only_fail(tmp_path: Path) -> None:
    """An ignored file (node_modules) and a buffer past index.max_file_bytes get no code
    actions; running a task on one says why instead of a raw index error."""
    root = make_workspace(
        tmp_path / "ws",
        {
            ".gitignore": "node_modules/\n",
            "calc.py": CALC,
            "node_modules/x/y.js": "function y() { return 1 }\n",
        },
    )
    sut = await start_server(root, env=server_env(tmp_path))
    try:
        await sut.wait_for(lambda: "end" in sut.progress_kinds("lsp-agent/index"), "the index")
        sut.open("calc.py")
        sut.open("node_modules/x/y.js")
        sut.open("big.py", text="x = 1\n" * 200_000)  # 1.2 MB: past the 1 MiB default

        async def actions(path: str) -> list:
            return (
                await sut.client.text_document_code_action_async(
                    types.CodeActionParams(
                        text_document=types.TextDocumentIdentifier(uri=sut.uri(path)),
                        range=_rng(0, 0, 1, 0),
                        context=types.CodeActionContext(diagnostics=[]),
                    )
                )
                or []
            )

        await sut.wait_for_async(lambda: _has_actions(actions, "calc.py"), "calc.py's actions")
        assert await actions("node_modules/x/y.js") == []
        assert await actions("big.py") == []
        with pytest.raises(JsonRpcException, match=r"node_modules/x/y\.js: it is ignored"):
            await sut.run_task("node_modules/x/y.js", preset="simplify")
    finally:
        await stop_server(sut)


async def _has_actions(actions, path: str) -> bool:  # type: ignore[no-untyped-def]
    return bool(await actions(path))
