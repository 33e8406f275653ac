"""textDocument/codeAction and codeAction/resolve: pure, fast, and never call a model.

Every action carries the command ``lspAgent.runTask`` with the argument object documented in
docs/architecture.md. Clients that resolve the ``command`` property lazily get bare actions and
the command on ``codeAction/resolve``; the rest get it at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from lsprotocol import converters, types
from pygls.lsp.server import LanguageServer

from lsp_agent.handlers.command_names import RUN_TASK
from lsp_agent.handlers.presets import FIX, REFACTORS
from lsp_agent.handlers.session import Session

log = logging.getLogger(__name__)

SOURCE_KIND = "source.lspAgent"
KINDS = [types.CodeActionKind.QuickFix, types.CodeActionKind.RefactorRewrite, SOURCE_KIND]

_converter = converters.get_converter()


def _wanted(kind: str, only: list[str] | None) -> bool:
    """LSP kinds are hierarchical: asking for "refactor" includes "refactor.rewrite"."""
    if not only:
        return True
    return any(kind == prefix or kind.startswith(prefix + ".") for prefix in only)


def _is_empty(selection: types.Range) -> bool:
    return selection.start == selection.end


def run_task_arguments(
    uri: str,
    version: int | None,
    selection: types.Range | None,
    diagnostics: list[types.Diagnostic],
    preset: str | None,
) -> dict[str, Any]:
    args: dict[str, Any] = {
        "uri": uri,
        "version": version,
        "range": None if selection is None else _converter.unstructure(selection),
        "diagnostics": [_converter.unstructure(d) for d in diagnostics],
        "preset": preset,
        "instruction": None,
    }
    if preset is None:
        args["needsInstruction"] = True  # the client prompts the user, then runs the command
    return args


@dataclass(frozen=True)
class ActionSpec:
    title: str
    kind: str
    arguments: dict[str, Any]  # the lspAgent.runTask argument object
    diagnostics: tuple[types.Diagnostic, ...] = ()  # the ones a quickfix resolves


def build_actions(params: types.CodeActionParams, version: int | None) -> list[ActionSpec]:
    """Every action that applies to the request, in menu order."""
    uri = params.text_document.uri
    only = params.context.only
    found: list[ActionSpec] = []
    if _wanted(types.CodeActionKind.QuickFix, only):
        for diagnostic in params.context.diagnostics:
            first_line = diagnostic.message.strip().splitlines()[0] if diagnostic.message else ""
            args = run_task_arguments(uri, version, diagnostic.range, [diagnostic], FIX.name)
            found.append(ActionSpec(f"{FIX.title}: {first_line}", "quickfix", args, (diagnostic,)))
    if not _is_empty(params.range) and _wanted(types.CodeActionKind.RefactorRewrite, only):
        diagnostics = list(params.context.diagnostics)
        for preset in REFACTORS:
            args = run_task_arguments(uri, version, params.range, diagnostics, preset.name)
            found.append(ActionSpec(f"lsp-agent: {preset.title}", "refactor.rewrite", args))
        args = run_task_arguments(uri, version, params.range, diagnostics, None)
        found.append(ActionSpec("lsp-agent: Rewrite selection…", "refactor.rewrite", args))
    if _wanted(SOURCE_KIND, only):
        args = run_task_arguments(uri, version, None, [], None)
        found.append(ActionSpec("lsp-agent: Apply an instruction to this file…", SOURCE_KIND, args))
    return found


def _command(title: str, args: dict[str, Any]) -> types.Command:
    return types.Command(title=title, command=RUN_TASK, arguments=[args])


def setup(server: LanguageServer, session: Session) -> None:
    options = types.CodeActionOptions(code_action_kinds=KINDS, resolve_provider=True)

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, options)
    def code_action(params: types.CodeActionParams) -> list[types.CodeAction]:
        try:  # a file in no workspace folder (or an untitled buffer) cannot be a task's target
            root, path = session.roots.find(params.text_document.uri)
        except ValueError:
            return []
        if root.index is not None and root.index_ready.is_set():
            reason = root.index.unavailable(path)
            if reason is not None:  # ignored, too large, binary: a task could only fail
                log.debug("no code actions for %s: %s", path, reason)
                return []
        doc = root.documents.get(path)
        version = doc.version if doc is not None else None
        lazy = "command" in session.code_action_resolve_properties
        actions = []
        for spec in build_actions(params, version):
            action = types.CodeAction(
                title=spec.title, kind=spec.kind, diagnostics=list(spec.diagnostics) or None
            )
            if lazy:
                action.data = {"title": spec.title, "arguments": spec.arguments}
            else:
                action.command = _command(spec.title, spec.arguments)
            actions.append(action)
        return actions

    @server.feature(types.CODE_ACTION_RESOLVE)
    def resolve(action: types.CodeAction) -> types.CodeAction:
        data = action.data
        if action.command is None and isinstance(data, dict) and "arguments" in data:
            action.command = _command(str(data.get("title") or action.title), data["arguments"])
        return action
