"""Scripted-model rules for one-file tasks and helpers to observe tasks through the server."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from lsprotocol import types

from tests.server.lsp_helpers import WAIT_S, ServerUnderTest
from tests.support.scripted_model import ScriptedModel


def file_of(name: str) -> str:
    return f"{name}.py"


def edit_rules(name: str, gate: threading.Event | None = None) -> list[dict[str, Any]]:
    """Researcher → one coder renaming ``<name>_value`` → reviewer approves."""
    path = file_of(name)
    block = (
        f"{path}\n<<<<<<< SEARCH\ndef {name}_value(x):\n=======\ndef {name}_plus_one(x):\n"
        ">>>>>>> REPLACE\n"
    )
    coder_reply: Any = {"content": block}
    if gate is not None:

        def coder_reply(body: dict[str, Any], gate: threading.Event = gate) -> dict[str, Any]:
            gate.wait(60)
            return {"content": block}

    return [
        {
            "match": {"has_tool": "submit_plan", "contains": f"Files: {path}"},
            "reply": {
                "tool_calls": [
                    {
                        "name": "submit_plan",
                        "arguments": {
                            "targets": [{"path": path, "instructions": "Rename the function."}],
                            "notes": "one file",
                        },
                    }
                ]
            },
        },
        {"match": {"contains": f"# Target file: {path}"}, "reply": coder_reply},
    ]


APPROVE = {
    "match": {"has_tool": "submit_review"},
    "reply": {
        "tool_calls": [{"name": "submit_review", "arguments": {"approved": True, "findings": []}}]
    },
}


def coder_started(model: ScriptedModel, path: str) -> bool:
    marker = f"# Target file: {path}"
    return any(marker in str(r.body.get("messages")) for r in model.requests)


def edits_for(sut: ServerUnderTest, path: str) -> list[types.TextDocumentEdit]:
    found = []
    for params in sut.edits:
        for change in params.edit.document_changes or []:
            if isinstance(change, types.TextDocumentEdit) and change.text_document.uri == sut.uri(
                path
            ):
                found.append(change)
    return found


async def task_state(sut: ServerUnderTest, task_id: str) -> str:
    return next(t["state"] for t in await sut.tasks() if t["id"] == task_id)


async def wait_state(sut: ServerUnderTest, task_id: str, states: set[str]) -> str:
    state = ""

    async def poll() -> bool:
        nonlocal state
        state = await task_state(sut, task_id)
        return state in states

    async def loop() -> None:
        while not await poll():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(loop(), WAIT_S)
    except TimeoutError:
        raise AssertionError(f"task {task_id} stayed {state!r}, wanted {states}") from None
    return state
