"""Drive the real server (`python -m lsp_agent serve`) as a subprocess over stdio.

``ServerUnderTest`` wraps a pytest-lsp client with what these tests need: a recorded and
answerable ``workspace/applyEdit``, progress and messages collected per token, and a helper to
wait for a condition without timing assertions (the timeouts only stop a hung test).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Union

from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp.client import LanguageClient, make_test_lsp_client

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60.0  # a hang guard, not a performance expectation


def full_capabilities() -> types.ClientCapabilities:
    return types.ClientCapabilities(
        workspace=types.WorkspaceClientCapabilities(
            apply_edit=True,
            configuration=True,
            workspace_edit=types.WorkspaceEditClientCapabilities(
                document_changes=True,
                change_annotation_support=types.ChangeAnnotationsSupportOptions(
                    groups_on_label=True
                ),
                resource_operations=[types.ResourceOperationKind.Create],
            ),
        ),
        window=types.WindowClientCapabilities(work_done_progress=True),
        text_document=types.TextDocumentClientCapabilities(
            code_action=types.CodeActionClientCapabilities(
                code_action_literal_support=types.ClientCodeActionLiteralOptions(
                    code_action_kind=types.ClientCodeActionKindOptions(
                        value_set=["", "quickfix", "refactor", "refactor.rewrite", "source"]
                    )
                ),
                resolve_support=types.ClientCodeActionResolveOptions(properties=[]),
            ),
            synchronization=types.TextDocumentSyncClientCapabilities(did_save=False),
        ),
    )


def _register_code_action_hook(client: LanguageClient) -> None:
    """lsprotocol 2025.0.0 structures a CodeAction that has a ``command`` as a Command (its
    union hook only checks ``"command" in obj``), losing kind/diagnostics and turning the
    nested command into a string. A CodeAction's ``command`` is an object; a Command's is a
    string: decide on that."""
    converter = client.protocol._converter

    def structure(obj: Any, _: Any) -> types.Command | types.CodeAction:
        if isinstance(obj.get("command"), str):
            return converter.structure(obj, types.Command)
        return converter.structure(obj, types.CodeAction)

    converter.register_structure_hook(Union[types.Command, types.CodeAction], structure)  # noqa: UP007


class ServerUnderTest:
    def __init__(self, client: LanguageClient, root: Path) -> None:
        self.client = client
        self.root = root
        self.edits: list[types.ApplyWorkspaceEditParams] = []
        self.accept_edits = True
        self.init_result: types.InitializeResult | None = None
        self._raw_ids = 0
        self._changed = asyncio.Condition()

    # -- documents -----------------------------------------------------------------------
    def uri(self, path: str) -> str:
        uri = from_fs_path(str(self.root / path))
        assert uri is not None
        return uri

    def open(self, path: str, version: int = 1, text: str | None = None) -> str:
        text = (self.root / path).read_text() if text is None else text
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=self.uri(path), language_id="python", version=version, text=text
                )
            )
        )
        return text

    def change(self, path: str, version: int, rng: types.Range, text: str) -> None:
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=self.uri(path), version=version
                ),
                content_changes=[types.TextDocumentContentChangePartial(range=rng, text=text)],
            )
        )

    # -- commands ------------------------------------------------------------------------
    async def command(self, name: str, argument: Any) -> Any:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=[argument])
        )

    async def run_task(self, path: str, **fields: Any) -> Any:
        argument = {
            "uri": self.uri(path),
            "version": None,
            "range": None,
            "diagnostics": [],
            "preset": None,
            "instruction": None,
            **fields,
        }
        return await self.command("lspAgent.runTask", argument)

    def raw_request_start(self, method: str, params: Any) -> tuple[str, asyncio.Future[Any]]:
        """Send params as they are (the typed API would refuse malformed ones); returns the
        request id and the future of its answer."""
        protocol = self.client.protocol
        self._raw_ids += 1
        msg_id = f"raw-{self._raw_ids}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        protocol._request_futures[msg_id] = future
        protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id, future

    async def raw_request(self, method: str, params: Any) -> Any:
        _, future = self.raw_request_start(method, params)
        return await asyncio.wait_for(future, WAIT_S)

    async def tasks(self) -> list[dict[str, Any]]:
        result = await self.client.protocol.send_request_async("lspAgent/tasks", {})
        return [dict(t._asdict()) if hasattr(t, "_asdict") else t for t in result.tasks]

    # -- waiting -------------------------------------------------------------------------
    async def notify_changed(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], what: str) -> Any:
        async def loop() -> Any:
            while not (value := predicate()):
                async with self._changed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), 0.05)
            return value

        try:
            return await asyncio.wait_for(loop(), WAIT_S)
        except TimeoutError:
            raise AssertionError(f"gave up waiting for {what}") from None

    async def wait_for_async(self, predicate: Callable[[], Any], what: str) -> None:
        """Like ``wait_for`` for a coroutine predicate (one that asks the server)."""

        async def loop() -> None:
            while not await predicate():
                await asyncio.sleep(0.02)

        try:
            await asyncio.wait_for(loop(), WAIT_S)
        except TimeoutError:
            raise AssertionError(f"gave up waiting for {what}") from None

    def progress_kinds(self, token: str) -> list[str]:
        return [value.kind for value in self.client.progress_reports.get(token, [])]

    def messages(self) -> list[str]:
        return [m.message for m in self.client.messages]


async def start_server(
    root: Path,
    *,
    env: Mapping[str, str],
    capabilities: types.ClientCapabilities | None = None,
    initialization_options: Any = None,
    configuration: dict[str, Any] | None = None,
    folders: list[Path] | None = None,
    tree: Path | None = None,
) -> ServerUnderTest:
    """``folders``: send these as workspaceFolders (multi-root); ``root`` stays the rootUri.
    ``tree``: the checkout whose server runs (a benchmark's baseline); default this one."""
    client = make_test_lsp_client()
    _register_code_action_hook(client)
    sut = ServerUnderTest(client, root)
    if configuration is not None:
        client.set_configuration(configuration)

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    async def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        sut.edits.append(params)
        await sut.notify_changed()
        if sut.accept_edits:
            return types.ApplyWorkspaceEditResult(applied=True)
        return types.ApplyWorkspaceEditResult(applied=False, failure_reason="user said no")

    full_env = {**os.environ, **env, "PYTHONPATH": str(tree or REPO_ROOT)}
    await client.start_io(
        sys.executable, "-m", "lsp_agent", "serve", "--log-level", "info", env=full_env
    )
    workspace_folders = [workspace_folder(f) for f in folders] if folders else None
    sut.init_result = await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities or full_capabilities(),
            root_uri=from_fs_path(str(root)),
            workspace_folders=workspace_folders,
            initialization_options=initialization_options,
        )
    )
    return sut


def workspace_folder(path: Path) -> types.WorkspaceFolder:
    uri = from_fs_path(str(path))
    assert uri is not None
    return types.WorkspaceFolder(uri=uri, name=path.name)


async def stop_server(sut: ServerUnderTest) -> None:
    await sut.client.shutdown_session()
    await sut.client.stop()


def apply_text_edits(text: str, edits: list[Any]) -> str:
    """Apply LSP text edits (UTF-16 positions) the way a client does, last first."""
    from lsp_agent.edits import TextEdit
    from lsp_agent.edits import apply_text_edits as apply

    engine = [
        TextEdit(
            e.range.start.line,
            e.range.start.character,
            e.range.end.line,
            e.range.end.character,
            e.new_text,
        )
        for e in edits
    ]
    return apply(text, engine)
