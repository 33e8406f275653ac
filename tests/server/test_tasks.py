"""Tasks end to end: the real server, the real worker, the scripted model over HTTP.

One server and one scripted model are shared by the module; each test works on its own file,
so the rules (keyed on the file name) never answer another test's task. Coders that must be
held mid-task wait on a ``threading.Event`` (a gate) inside the model server.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types

from tests.server.conftest import make_workspace, server_env
from tests.server.lsp_helpers import ServerUnderTest, apply_text_edits, start_server, stop_server
from tests.server.task_helpers import (
    APPROVE,
    coder_started,
    edit_rules,
    edits_for,
    file_of,
    wait_state,
)
from tests.support.scripted_model import ScriptedModel

pytestmark = pytest.mark.asyncio(loop_scope="module")

FILES = {name: f"def {name}_value(x):\n    return x + 1\n\n\nLIMIT = 10\n" for name in "abcdefghi"}


GATES = {name: threading.Event() for name in "bcdefg"}


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModel]:
    rules = [rule for name in "abcdefgh" for rule in edit_rules(name, GATES.get(name))]
    auth_fault = {
        "match": {"has_tool": "submit_plan", "contains": "Files: i.py"},
        "fault": {"kind": "status", "status": 401},
    }
    with ScriptedModel([auth_fault, *rules, APPROVE]) as scripted:
        yield scripted
    for gate in GATES.values():
        gate.set()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(module_tmp: Path, model: ScriptedModel) -> AsyncIterator[ServerUnderTest]:
    root = make_workspace(module_tmp / "ws", {file_of(n): t for n, t in FILES.items()})
    env = server_env(module_tmp, LSP_AGENT_BASE_URL=model.url, LSP_AGENT_MODEL="scripted-model")
    sut = await start_server(root, env=env, initialization_options={"confirmEdits": True})
    yield sut
    await stop_server(sut)


async def test_run_task_reports_progress_and_applies_versioned_edits(
    server: ServerUnderTest,
) -> None:
    text = server.open("a.py", version=3)
    selection = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 16}}
    result = await server.run_task("a.py", version=3, range=selection, preset="simplify")
    task_id = result["taskId"]
    assert task_id.startswith("t-") and set(result) == {"taskId"}

    [doc_edit] = await server.wait_for(lambda: edits_for(server, "a.py"), "the applyEdit")
    assert doc_edit.text_document.version == 3
    assert apply_text_edits(text, doc_edit.edits) == text.replace("a_value", "a_plus_one")
    params = next(p for p in server.edits if doc_edit in (p.edit.document_changes or []))
    annotation = params.edit.change_annotations[task_id]
    assert annotation.needs_confirmation is True  # confirmEdits from initializationOptions
    assert "a.py" in annotation.label
    assert all(e.annotation_id == task_id for e in doc_edit.edits)

    token = f"lsp-agent/{task_id}"
    kinds = server.progress_kinds(token)
    assert kinds[0] == "begin" and kinds[-1] == "end" and "report" in kinds
    begin = server.client.progress_reports[token][0]
    assert begin.cancellable is True
    # The title names the server once (editors show it as sent), then the task.
    assert begin.title.startswith("lsp-agent: ") and begin.title.count("lsp-agent") == 1
    messages = [getattr(v, "message", "") or "" for v in server.client.progress_reports[token]]
    assert any(m.startswith("researching") for m in messages)
    assert "coding file 1 of 1" in messages
    assert await wait_state(server, task_id, {"applied"}) == "applied"
    [row] = [t for t in await server.tasks() if t["id"] == task_id]
    assert row["files"] == ["a.py"] and row["tokens"] > 0 and row["progress"] == 100

    manifest = await server.client.protocol.send_request_async(
        "lspAgent/context", {"taskId": task_id}
    )
    assert manifest.budget > 0 and isinstance(manifest.files, list)
    # One record per request the task sent (journaled with its result).
    assert len(manifest.requests) >= 3  # researcher, coder, reviewer
    assert {r.role for r in manifest.requests} >= {"researcher", "coder", "reviewer"}


@pytest.mark.parametrize(("name", "how"), [("b", "command"), ("c", "progress")])
async def test_cancel_mid_task_applies_nothing(
    server: ServerUnderTest, model: ScriptedModel, name: str, how: str
) -> None:
    path = file_of(name)
    result = await server.run_task(path, preset="docstrings")
    task_id = result["taskId"]
    await server.wait_for(lambda: coder_started(model, path), "the coder request")
    if how == "command":
        answer = await server.command("lspAgent.cancelTask", {"taskId": task_id})
        assert answer == {"taskId": task_id, "cancelled": True}
    else:
        server.client.window_work_done_progress_cancel(
            types.WorkDoneProgressCancelParams(token=f"lsp-agent/{task_id}")
        )
    assert await wait_state(server, task_id, {"cancelled"}) == "cancelled"
    GATES[name].set()
    await server.wait_for(
        lambda: server.progress_kinds(f"lsp-agent/{task_id}")[-1:] == ["end"], "progress end"
    )
    assert not edits_for(server, path)


async def test_user_edit_during_task_is_rebased(
    server: ServerUnderTest, model: ScriptedModel
) -> None:
    text = server.open("d.py", version=1)
    task_id = (await server.run_task("d.py", preset="typeHints"))["taskId"]
    await server.wait_for(lambda: coder_started(model, "d.py"), "the coder request")
    end = types.Position(line=4, character=10)
    server.change("d.py", 2, types.Range(start=end, end=end), "  # the user typed this")
    current = text.replace("LIMIT = 10", "LIMIT = 10  # the user typed this")
    GATES["d"].set()
    [doc_edit] = await server.wait_for(lambda: edits_for(server, "d.py"), "the applyEdit")
    assert doc_edit.text_document.version == 2  # the current version, not the one read
    assert apply_text_edits(current, doc_edit.edits) == current.replace("d_value", "d_plus_one")
    assert await wait_state(server, task_id, {"applied"}) == "applied"


async def test_conflicting_user_edit_refuses_with_a_message(
    server: ServerUnderTest, model: ScriptedModel
) -> None:
    server.open("e.py", version=1)
    task_id = (await server.run_task("e.py", preset="simplify"))["taskId"]
    await server.wait_for(lambda: coder_started(model, "e.py"), "the coder request")
    rng = types.Range(
        start=types.Position(line=0, character=4), end=types.Position(line=0, character=11)
    )
    server.change("e.py", 2, rng, "e_renamed_by_user")
    GATES["e"].set()
    shown = await server.wait_for(
        lambda: [m for m in server.messages() if "e.py changed while the task ran" in m],
        "the refusal message",
    )
    assert "not applied" in shown[0]
    assert not edits_for(server, "e.py")
    [row] = [t for t in await server.tasks() if t["id"] == task_id]
    assert row["state"] == "succeeded" and "not applied" in row["message"]


async def test_two_tasks_run_at_once(server: ServerUnderTest, model: ScriptedModel) -> None:
    first = (await server.run_task("f.py", preset="simplify"))["taskId"]
    second = (await server.run_task("g.py", instruction="rename it"))["taskId"]
    # Both coders are inside the model at the same time: neither task waits for the other.
    await server.wait_for(
        lambda: coder_started(model, "f.py") and coder_started(model, "g.py"), "both coders"
    )
    GATES["f"].set()
    GATES["g"].set()
    await server.wait_for(
        lambda: edits_for(server, "f.py") and edits_for(server, "g.py"), "both edits"
    )
    assert await wait_state(server, first, {"applied"}) == "applied"
    assert await wait_state(server, second, {"applied"}) == "applied"


async def test_refused_edit_is_reported_not_retried(server: ServerUnderTest) -> None:
    server.accept_edits = False
    try:
        before = len(server.edits)
        task_id = (await server.run_task("h.py", preset="docstrings"))["taskId"]
        assert await wait_state(server, task_id, {"rejected"}) == "rejected"
        shown = await server.wait_for(
            lambda: [m for m in server.messages() if "did not apply the edit" in m], "message"
        )
        assert task_id in shown[0]
        assert len(server.edits) == before + 1  # asked once, not again
    finally:
        server.accept_edits = True


async def test_model_failure_becomes_a_failed_task_and_a_message(server: ServerUnderTest) -> None:
    task_id = (await server.run_task("i.py", instruction="anything"))["taskId"]
    assert await wait_state(server, task_id, {"failed"}) == "failed"
    shown = await server.wait_for(
        lambda: [
            m for m in server.client.messages if "i.py" in m.message and "failed" in m.message
        ],
        "the failure message",
    )
    assert shown[0].type == types.MessageType.Error
    assert "401" in shown[0].message or "auth" in shown[0].message
    assert not edits_for(server, "i.py")
    assert server.progress_kinds(f"lsp-agent/{task_id}")[-1] == "end"


async def test_settings_change_takes_effect_and_bad_values_warn(server: ServerUnderTest) -> None:
    before = len(server.client.messages)
    server.client.set_configuration({"lspAgent": {"confirmEdits": False, "jobs": "many"}})
    server.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings=None)
    )
    await server.wait_for(
        lambda: any(
            "jobs must be a whole number" in m.message for m in server.client.messages[before:]
        ),
        "the settings warning",
    )
    task_id = (await server.run_task("a.py", instruction="rename again"))["taskId"]
    await server.wait_for(
        lambda: any(task_id in (p.edit.change_annotations or {}) for p in server.edits),
        "the second edit of a.py",
    )
    params = next(p for p in server.edits if task_id in (p.edit.change_annotations or {}))
    assert params.edit.change_annotations[task_id].needs_confirmation is False


async def test_a_range_from_an_older_version_follows_the_lines_it_named(
    server: ServerUnderTest, model: ScriptedModel
) -> None:
    """The code action was computed at version 1; the user inserted two lines above the
    selection before running it: the task gets the lines the user selected, now 2 lower."""
    server.open("h.py", version=1)
    top = types.Position(line=0, character=0)
    server.change("h.py", 2, types.Range(start=top, end=top), "# one\n# two\n")
    selection = {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 16}}
    task_id = (await server.run_task("h.py", version=1, range=selection, preset="simplify"))[
        "taskId"
    ]
    assert await wait_state(server, task_id, {"applied"}) == "applied"
    prompts = [str(r.body.get("messages")) for r in model.requests]
    headers = {
        p.split("=== h.py (selection, ")[1].split(")")[0] for p in prompts if "=== h.py (s" in p
    }
    assert headers == {"lines 4-4"}  # line 2 at version 1 is line 4 now (1-based)


async def test_a_range_whose_lines_were_edited_since_is_refused(server: ServerUnderTest) -> None:
    server.open("i.py", version=1)
    rng = types.Range(
        start=types.Position(line=1, character=4), end=types.Position(line=1, character=10)
    )
    server.change("i.py", 2, rng, "yield ")  # the user rewrote the selected line
    selection = {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 16}}
    result = await server.run_task("i.py", version=1, range=selection, preset="simplify")
    assert result["taskId"] is None
    assert "selected lines of i.py changed" in result["error"]
