"""Edits to files that steer other tools (CI, editor settings) always ask for confirmation:
through the real server over stdio, a task that changes a workflow and a source file.

With change annotations the workflow's edits carry their own annotation with
``needsConfirmation: true`` (``confirmEdits`` is off, so the source file's does not); a client
without annotations is not sent the edit on its own, and ``lspAgent.applyTask`` applies it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from lsp_agent.steering_files import steering_kind
from tests.server.conftest import make_workspace, server_env
from tests.server.lsp_helpers import full_capabilities, start_server, stop_server
from tests.server.task_helpers import APPROVE, wait_state
from tests.support.scripted_model import ScriptedModel

WORKFLOW = ".github/workflows/ci.yml"
CI = "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: pytest\n"
APP = "def s_value(x):\n    return x + 1\n"


def rules() -> list[dict[str, Any]]:
    plan = {
        "targets": [
            {"path": "app.py", "instructions": "rename"},
            {"path": WORKFLOW, "instructions": "run ruff too"},
        ],
        "notes": "two files",
    }
    app_edit = "app.py\n<<<<<<< SEARCH\ndef s_value(x):\n=======\ndef s_plus_one(x):\n"
    ci_edit = (
        f"{WORKFLOW}\n<<<<<<< SEARCH\n      - run: pytest\n=======\n      - run: ruff check .\n"
    )
    return [
        {
            "match": {"has_tool": "submit_plan"},
            "reply": {"tool_calls": [{"name": "submit_plan", "arguments": plan}]},
        },
        {
            "match": {"contains": "# Target file: app.py"},
            "reply": {"content": app_edit + ">>>>>>> REPLACE\n"},
        },
        {
            "match": {"contains": f"# Target file: {WORKFLOW}"},
            "reply": {"content": ci_edit + "      - run: pytest\n>>>>>>> REPLACE\n"},
        },
        APPROVE,
    ]


@pytest.fixture
def model() -> Iterator[ScriptedModel]:
    with ScriptedModel(rules()) as scripted:
        yield scripted


def workspace(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws", {"app.py": APP, WORKFLOW: CI})


def env(tmp_path: Path, model: ScriptedModel) -> dict[str, str]:
    return server_env(tmp_path, LSP_AGENT_BASE_URL=model.url, LSP_AGENT_MODEL="scripted-model")


def test_which_files_steer_other_tools() -> None:
    assert steering_kind(".github/workflows/ci.yml") == "CI configuration"
    assert steering_kind(".gitlab-ci.yml") == "CI configuration"
    assert steering_kind("sub/.gitlab-ci.yml") == "CI configuration"
    assert steering_kind(".vscode/settings.json") == "editor configuration"
    assert steering_kind("proj.code-workspace") == "editor configuration"
    assert steering_kind(".envrc") == "shell environment"
    assert steering_kind(".pre-commit-config.yaml") == "git configuration"
    for plain in ("app.py", "docs/.github.md", "src/github/workflows.py", "vscode/x.json"):
        assert steering_kind(plain) is None


@pytest.mark.asyncio
async def test_workflow_edits_carry_needs_confirmation(
    tmp_path: Path, model: ScriptedModel
) -> None:
    sut = await start_server(workspace(tmp_path), env=env(tmp_path, model))
    try:
        task_id = (await sut.run_task("app.py", instruction="rename and lint"))["taskId"]
        assert await wait_state(sut, task_id, {"applied"}) == "applied"
        [params] = sut.edits
        annotations = params.edit.change_annotations
        by_uri = {
            change.text_document.uri: change
            for change in params.edit.document_changes
            if isinstance(change, types.TextDocumentEdit)
        }
        ci_edits = by_uri[sut.uri(WORKFLOW)].edits
        app_edits = by_uri[sut.uri("app.py")].edits
        assert {e.annotation_id for e in ci_edits} == {f"{task_id}/confirm"}
        assert {e.annotation_id for e in app_edits} == {task_id}
        assert annotations[f"{task_id}/confirm"].needs_confirmation is True
        assert "CI configuration" in annotations[f"{task_id}/confirm"].label
        assert WORKFLOW in (annotations[f"{task_id}/confirm"].description or "")
        assert annotations[task_id].needs_confirmation is False  # confirmEdits is off
    finally:
        await stop_server(sut)


@pytest.mark.asyncio
async def test_without_annotations_the_user_applies_it_explicitly(
    tmp_path: Path, model: ScriptedModel
) -> None:
    capabilities = full_capabilities()
    assert capabilities.workspace and capabilities.workspace.workspace_edit
    capabilities.workspace.workspace_edit.change_annotation_support = None
    sut = await start_server(
        workspace(tmp_path), env=env(tmp_path, model), capabilities=capabilities
    )
    try:
        task_id = (await sut.run_task("app.py", instruction="rename and lint"))["taskId"]
        warning = await sut.wait_for(
            lambda: next((m for m in sut.messages() if "cannot ask you to confirm" in m), None),
            "the warning",
        )
        assert WORKFLOW in warning and f"lspAgent.applyTask {task_id}" in warning
        assert sut.edits == []
        assert await wait_state(sut, task_id, {"succeeded"}) == "succeeded"
        answer = await sut.command("lspAgent.applyTask", {"taskId": task_id})
        assert answer["applied"] is True
        assert len(sut.edits) == 1
    finally:
        await stop_server(sut)
