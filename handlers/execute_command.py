"""workspace/executeCommand: lspAgent.runTask, lspAgent.cancelTask, lspAgent.applyTask.

Each command takes one argument object (docs/architecture.md, "The LSP surface"). Arguments are
validated here so a malformed call gets a JSON-RPC InvalidParams error naming the field, and
the server carries on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from lsprotocol import converters, types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from lsp_agent.config import ConfigError
from lsp_agent.handlers.apply_edit import apply_result
from lsp_agent.handlers.command_names import APPLY_TASK, CANCEL_TASK, RUN_TASK
from lsp_agent.handlers.presets import PRESETS
from lsp_agent.handlers.session import Session
from lsp_agent.handlers.taskflow import RunTaskArgs, StaleRequest, start_task
from lsp_agent.tasks.model import TaskState

log = logging.getLogger(__name__)

_converter = converters.get_converter()


def _one_object(command: str, args: tuple[Any, ...]) -> Mapping[str, Any]:
    if len(args) != 1 or not isinstance(args[0], Mapping):
        raise JsonRpcInvalidParams(f"{command} takes one argument, an object")
    return args[0]


def _field(obj: Mapping[str, Any], name: str, kind: type | tuple[type, ...], optional: bool) -> Any:
    value = obj.get(name)
    if value is None:
        if optional:
            return None
        raise JsonRpcInvalidParams(f"missing {name!r}")
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise JsonRpcInvalidParams(f"{name!r} has the wrong type: {value!r}")
    return value


_UNAVAILABLE = {
    "ignored": "it is ignored (.gitignore, .git/info/exclude or index.ignore)",
    "too_large": "it is larger than index.max_file_bytes",
    "binary": "it is a binary file",
    "not indexed": "it is not in the workspace index",
}


def parse_run_task(session: Session, args: tuple[Any, ...]) -> RunTaskArgs:
    obj = _one_object(RUN_TASK, args)
    uri = _field(obj, "uri", str, False)
    try:
        root, path = session.roots.find(uri)
    except ValueError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    if root.index is not None and root.index_ready.is_set():
        reason = root.index.unavailable(path)
        if reason is not None:
            raise JsonRpcInvalidParams(f"lsp-agent cannot work on {path}: {_UNAVAILABLE[reason]}")
    selection = _field(obj, "range", Mapping, True)
    try:
        rng = None if selection is None else _converter.structure(selection, types.Range)
        diagnostics = [
            _converter.unstructure(_converter.structure(d, types.Diagnostic))
            for d in _field(obj, "diagnostics", list, True) or []
        ]
    except Exception as exc:
        raise JsonRpcInvalidParams(f"invalid range or diagnostics: {exc}") from None
    preset = _field(obj, "preset", str, True)
    if preset is not None and preset not in PRESETS:
        raise JsonRpcInvalidParams(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    instruction = _field(obj, "instruction", str, True)
    if instruction is not None and not instruction.strip():
        instruction = None
    if preset is None and instruction is None:
        raise JsonRpcInvalidParams(
            "no instruction: the client should prompt for one and pass it as 'instruction'"
        )
    return RunTaskArgs(
        root=root,
        uri=uri,
        path=path,
        version=_field(obj, "version", int, True),
        range=rng,
        diagnostics=diagnostics,
        preset=preset,
        instruction=instruction,
    )


def _task_id(command: str, args: tuple[Any, ...]) -> str:
    obj = _one_object(command, args)
    return str(_field(obj, "taskId", str, False))


def setup(server: LanguageServer, session: Session) -> None:
    # Requests still waiting on a task (clients without applyEdit): request id -> task id.
    waiting: dict[Any, str] = {}

    def on_cancel_request(msg_id: Any) -> None:
        task_id = waiting.pop(msg_id, None)
        if task_id is not None:
            log.info("$/cancelRequest %s cancels task %s", msg_id, task_id)
            cancel(task_id)

    def cancel(task_id: str) -> bool:
        return any(r.runner is not None and r.runner.cancel(task_id) for r in session.roots)

    server.protocol.on_cancel_request = on_cancel_request  # type: ignore[attr-defined]

    @server.command(RUN_TASK)
    async def run_task(*args: Any) -> dict[str, Any]:
        request = parse_run_task(session, args)
        try:
            task, finished = start_task(session, request)
        except (ConfigError, StaleRequest) as exc:
            message = f"lsp-agent cannot run the task: {exc}"
            session.show(message, types.MessageType.Error)
            return {"taskId": None, "error": message}
        log.info("task %s queued: %s", task.id, task.title)
        if session.supports_apply_edit:
            return {"taskId": task.id}
        # The edit can only travel in this command's result: wait for it. $/cancelRequest on
        # this request cancels the task.
        msg_id = server.protocol.msg_id
        waiting[msg_id] = task.id
        try:
            return await asyncio.shield(finished)
        finally:
            waiting.pop(msg_id, None)

    @server.command(CANCEL_TASK)
    def cancel_task(*args: Any) -> dict[str, Any]:
        task_id = _task_id(CANCEL_TASK, args)
        return {"taskId": task_id, "cancelled": cancel(task_id)}

    @server.command(APPLY_TASK)
    async def apply_task(*args: Any) -> dict[str, Any]:
        task_id = _task_id(APPLY_TASK, args)
        found = session.roots.with_task(task_id)  # its own folder: edits resolve there only
        if found is None:
            raise JsonRpcInvalidParams(f"no task {task_id!r}")
        root, task = found
        # An unverified result applies only when the user asks for it: this command.
        if task.state not in (TaskState.SUCCEEDED, TaskState.REJECTED, TaskState.UNVERIFIED):
            message = f"task {task_id} is {task.state}; only a finished, unapplied result applies"
            session.show(f"lsp-agent: {message}", types.MessageType.Warning)
            return {"taskId": task_id, "state": str(task.state), "applied": False, "error": message}
        return {"taskId": task_id, **await apply_result(session, root, task, explicit=True)}
