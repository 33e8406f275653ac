"""A finished task's changes → one ``workspace/applyEdit``, all or nothing.

Each changed file is compared with what the task read. Unchanged: the edits go against the
document's current version (the one the task read). Changed while the task ran: the task's
change is rebased onto the current text (a three-way merge, then re-applying the edit blocks);
if that is not clean for any file, nothing is sent and the user is told which file and why.

Edits to files that steer other tools (CI, editor settings, hooks: ``steering_files``) carry
their own change annotation with ``needsConfirmation: true``, whatever ``confirmEdits`` says. A
client that cannot show annotations cannot be asked, so such a task is not applied on its own:
the user is told, and ``lspAgent.applyTask`` (an explicit request) applies it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from lsprotocol import converters, types

from lsp_agent.handlers.session import Root, Session
from lsp_agent.handlers.uris import path_to_uri
from lsp_agent.steering_files import steering_kind
from lsp_agent.tasks.model import Task, TaskState

log = logging.getLogger(__name__)

_converter = converters.get_converter()


class Conflict(Exception):
    """A file changed underneath the task in a way its edit cannot be rebased onto."""


@dataclass(frozen=True)
class FilePlan:
    path: str
    uri: str
    version: int | None  # current LSP version when open, else None (disk)
    old: str  # the text the edits apply to (current)
    new: str
    create: bool
    rebased: bool


def _current(root: Root, path: str) -> tuple[str, int | None, str | None]:
    """(uri, version, text) of a file as the user has it now: the buffer, else disk.

    ValueError for a path outside ``root``: a task's edits never land in another folder."""
    from lsp_agent.edits import safe_path

    disk = safe_path(root.path, path)
    path = disk.relative_to(root.path).as_posix()
    doc = root.documents.get(path)
    if doc is not None:
        root.applied_unopened.pop(path, None)
        return doc.uri, doc.version, doc.text
    uri = path_to_uri(root.path, path)
    try:
        text: str | None = disk.read_bytes().decode("utf-8")
    except FileNotFoundError:
        text = None
    except UnicodeDecodeError:
        raise Conflict(f"{path} is no longer valid UTF-8 text") from None
    applied = root.applied_unopened.get(path)
    if applied is not None:
        before, after = applied
        if text == after:  # the editor saved what we applied: disk tells the truth again
            del root.applied_unopened[path]
        elif text == before or (text is None and before == ""):
            return uri, None, after  # not saved yet: the editor's copy is what edits apply to
        else:
            raise Conflict(
                f"{path} changed on disk after an earlier lsp-agent edit the editor has not "
                "saved; save or revert it, then apply again"
            )
    return uri, None, text


def plan_file(root: Root, change: dict[str, Any]) -> FilePlan:
    from lsp_agent.edits import rebase_change

    path = str(change["path"])
    original = str(change.get("original_text") or "")
    new = str(change["new_text"])
    created = bool(change.get("created"))
    uri, version, current = _current(root, path)
    if current is None:
        if created:
            return FilePlan(path, uri, None, "", new, True, False)
        raise Conflict(f"{path} was deleted while the task ran")
    if created and current != "" and current != new:
        raise Conflict(f"{path} was created by someone else while the task ran")
    if current == original:
        return FilePlan(path, uri, version, current, new, False, False)
    merged = rebase_change(original, new, current, change.get("blocks") or [])
    if merged is None:
        raise Conflict(f"{path} changed while the task ran and the edit no longer fits")
    return FilePlan(path, uri, version, current, merged, False, True)


def confirm_id(task: Task) -> str:
    """The annotation of a task's edits to files that steer other tools."""
    return f"{task.id}/confirm"


def steering_paths(plans: list[FilePlan]) -> dict[str, str]:
    """path -> what it configures, for the plans that touch files steering other tools."""
    found = {plan.path: steering_kind(plan.path) for plan in plans}
    return {path: kind for path, kind in found.items() if kind}


def build_edit(session: Session, task: Task, plans: list[FilePlan]) -> types.WorkspaceEdit:
    from lsp_agent.edits import text_edits

    annotate = session.supports_change_annotations
    steering = steering_paths(plans)
    summary = str((task.result or {}).get("summary") or "")
    if not session.supports_document_changes:
        # Old clients: an unversioned map. Still all-or-nothing: it is one applyEdit.
        changes: dict[str, list[types.TextEdit]] = {}
        for plan in plans:
            changes[plan.uri] = [_text_edit(e, None) for e in text_edits(plan.old, plan.new)]
        return types.WorkspaceEdit(changes=changes)
    document_changes: list[Any] = []
    for plan in plans:
        annotation_id = None
        if annotate:
            annotation_id = confirm_id(task) if plan.path in steering else task.id
        if plan.create and session.supports_create_file:
            document_changes.append(
                types.CreateFile(
                    uri=plan.uri,
                    options=types.CreateFileOptions(overwrite=False, ignore_if_exists=True),
                    annotation_id=annotation_id,
                )
            )
        edits = [_text_edit(e, annotation_id) for e in text_edits(plan.old, plan.new)]
        document_changes.append(
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=plan.uri, version=plan.version
                ),
                edits=edits,
            )
        )
    annotations = None
    if annotate:
        annotations = {
            task.id: types.ChangeAnnotation(
                label=task.title or "lsp-agent",
                description=summary or None,
                needs_confirmation=session.settings.confirm_edits,
            )
        }
        if steering:
            kinds = sorted(set(steering.values()))
            annotations[confirm_id(task)] = types.ChangeAnnotation(
                label=f"{task.title or 'lsp-agent'}: changes {' and '.join(kinds)}",
                description="; ".join(f"{path} ({kind})" for path, kind in steering.items()),
                needs_confirmation=True,
            )
    return types.WorkspaceEdit(document_changes=document_changes, change_annotations=annotations)


def _text_edit(edit: Any, annotation_id: str | None) -> types.TextEdit:
    rng = types.Range(
        start=types.Position(line=edit.start_line, character=edit.start_character),
        end=types.Position(line=edit.end_line, character=edit.end_character),
    )
    if annotation_id is not None:
        return types.AnnotatedTextEdit(
            range=rng, new_text=edit.new_text, annotation_id=annotation_id
        )
    return types.TextEdit(range=rng, new_text=edit.new_text)


def _record(root: Root, task: Task, state: TaskState, message: str) -> None:
    task.state = state
    task.message = message
    if root.journal is not None:
        root.journal.set_state(task.id, state, message)


async def apply_result(
    session: Session, root: Root, task: Task, *, explicit: bool = False
) -> dict[str, Any]:
    """Send the task's result to the client. Returns ``{"state", "applied", "edit"?, "error"?}``.

    The edit JSON is included when the client cannot apply edits itself (no applyEdit).
    ``explicit``: the user asked for this apply (``lspAgent.applyTask``), so edits to files that
    steer other tools may go to a client that cannot ask for confirmation.
    """
    changes = list((task.result or {}).get("changes") or [])
    if not changes:
        return {"state": str(task.state), "applied": False}
    if task.id in session.applying:  # lspAgent.applyTask while its own apply is in flight
        return {"state": str(task.state), "applied": False, "error": "already being applied"}
    session.applying.add(task.id)
    try:
        # Planned and sent under the folder's lock: the next task's plan sees this one's
        # result (for an unopened file an unversioned edit would otherwise land blind on it).
        async with root.apply_lock:
            return await _apply(session, root, task, changes, explicit)
    finally:
        session.applying.discard(task.id)


async def _apply(
    session: Session, root: Root, task: Task, changes: list[dict[str, Any]], explicit: bool
) -> dict[str, Any]:
    if root.closed:
        reason = f"not applied: the workspace folder {root.path} was removed"
        session.show(f"lsp-agent: {task.title}: {reason}", types.MessageType.Warning)
        return {"state": str(task.state), "applied": False, "error": reason}
    try:
        plans = [plan_file(root, change) for change in changes]
    except (Conflict, ValueError) as exc:
        reason = f"not applied: {exc}"
        # An unverified result stays unverified: a later applyTask must not see it as verified.
        keep = TaskState.UNVERIFIED if task.state is TaskState.UNVERIFIED else TaskState.SUCCEEDED
        _record(root, task, keep, reason)
        session.show(f"lsp-agent: {task.title}: {reason}", types.MessageType.Warning)
        return {"state": str(task.state), "applied": False, "error": reason}
    steering = steering_paths(plans)
    can_confirm = session.supports_document_changes and session.supports_change_annotations
    if steering and not can_confirm and not explicit and session.supports_apply_edit:
        files = ", ".join(f"{path} ({kind})" for path, kind in steering.items())
        reason = (
            f"not applied on its own: it changes {files} and this editor cannot ask you to "
            f"confirm that; run lspAgent.applyTask {task.id} to apply it"
        )
        _record(root, task, TaskState.SUCCEEDED, reason)
        session.show(f"lsp-agent: {task.title}: {reason}", types.MessageType.Warning)
        return {"state": str(task.state), "applied": False, "error": reason}
    edit = build_edit(session, task, plans)
    rebased = [p.path for p in plans if p.rebased]
    if rebased:
        log.info("task %s: rebased onto newer text in %s", task.id, ", ".join(rebased))
    if not session.supports_apply_edit:
        session.show(
            f"lsp-agent: {task.title}: done; this editor cannot apply edits from the server, "
            "the edit is in the command's result"
        )
        return {"state": str(task.state), "applied": False, "edit": _converter.unstructure(edit)}
    try:
        response = await session.server.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=edit, label=f"lsp-agent: {task.title}")
        )
    except Exception as exc:  # the client answered with an error: report, do not retry
        response = types.ApplyWorkspaceEditResult(applied=False, failure_reason=str(exc))
    if response.applied:
        for plan in plans:
            if plan.version is None and plan.path not in root.documents:
                # ``before`` stays what disk held: a chain of unsaved edits keeps its base.
                prior = root.applied_unopened.get(plan.path)
                root.applied_unopened[plan.path] = (prior[0] if prior else plan.old, plan.new)
        _record(root, task, TaskState.APPLIED, "applied")
        return {"state": str(TaskState.APPLIED), "applied": True}
    reason = response.failure_reason or "the editor declined the edit"
    _record(root, task, TaskState.REJECTED, f"rejected by the editor: {reason}")
    session.show(
        f"lsp-agent: {task.title}: the editor did not apply the edit ({reason}); "
        f"run lspAgent.applyTask {task.id} to try again",
        types.MessageType.Warning,
    )
    return {"state": str(TaskState.REJECTED), "applied": False, "error": reason}
