"""One version per task, over the real stdio server: a buffer edited between the task's start and
its snapshot. The task froze the buffer at v1; by the time the snapshot is built the live index
holds v2. The prompt, every tool answer and the returned edits must all be v1 (the edit is then
rebased onto v2 by the server). Also: the snapshot is sized by the window the model's server
reports (learned before sizing), not by the preset.

The scripted model holds ``GET /v1/models`` on a gate: the task is learning the window, the
snapshot is not built yet, and the test edits the buffer in between.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types

from lsp_agent.agents import sizing
from lsp_agent.config import Settings
from tests.server.conftest import make_workspace, server_env
from tests.server.lsp_helpers import ServerUnderTest, apply_text_edits, start_server, stop_server
from tests.server.task_helpers import APPROVE, edits_for, wait_state
from tests.support.scripted_model import ScriptedModel

pytestmark = pytest.mark.asyncio(loop_scope="module")

V1 = "def alpha(x):\n    return x + 1\n\n\nMARK_ONE = 1\n\n\nLAST = 0\n"
HEAD_V2 = "import this_is_v2\n\n\n"  # v2 = this + v1 + TAIL_V2: every v1 line moves down 3
TAIL_V2 = "\n\ndef beta_added():\n    return alpha(2)\n"
V2 = HEAD_V2 + V1 + TAIL_V2
N_CTX = 32_768
GATE = threading.Event()

RESEARCH_CALLS = [
    {"name": "find_definitions", "arguments": {"name": "alpha"}},
    {"name": "find_definitions", "arguments": {"name": "beta_added"}},
    {"name": "find_references", "arguments": {"name": "alpha"}},
    {"name": "grep", "arguments": {"pattern": "MARK_ONE"}},
    {"name": "grep", "arguments": {"pattern": "this_is_v2"}},
    {"name": "read_file", "arguments": {"path": "v.py"}},
]


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModel]:
    block = "v.py\n<<<<<<< SEARCH\nMARK_ONE = 1\n=======\nMARK_ONE = 100\n>>>>>>> REPLACE\n"
    rules = [
        {  # the researcher's second request (after its tool results): the plan
            "match": {"has_tool": "submit_plan", "last_role": "tool"},
            "reply": {
                "tool_calls": [
                    {
                        "name": "submit_plan",
                        "arguments": {
                            "targets": [{"path": "v.py", "instructions": "Raise MARK_ONE."}],
                            "notes": "one file changes",
                        },
                    }
                ]
            },
        },
        {"match": {"has_tool": "submit_plan"}, "reply": {"tool_calls": RESEARCH_CALLS}},
        {"match": {"contains": "# Target file: v.py"}, "reply": {"content": block}},
        APPROVE,
    ]
    with ScriptedModel(rules, n_ctx=N_CTX, models_gate=GATE) as scripted:
        yield scripted
    GATE.set()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(module_tmp: Path, model: ScriptedModel) -> AsyncIterator[ServerUnderTest]:
    root = make_workspace(
        module_tmp / "ws", {"v.py": V1, "other.py": "from v import alpha\n\nalpha(3)\n"}
    )
    env = server_env(module_tmp, LSP_AGENT_BASE_URL=model.url, LSP_AGENT_MODEL="scripted-model")
    sut = await start_server(root, env=env)
    yield sut
    await stop_server(sut)


def _tool_results(model: ScriptedModel) -> list[str]:
    """The tool results of the researcher's second request, in call order."""
    second = next(
        r
        for r in model.requests
        if "submit_plan" in r.tool_names and r.messages[-1]["role"] == "tool"
    )
    return [str(m["content"]) for m in second.messages if m["role"] == "tool"]


async def test_a_buffer_edited_before_the_snapshot_is_seen_at_one_version(
    server: ServerUnderTest, model: ScriptedModel
) -> None:
    server.open("v.py", version=1, text=V1)
    task_id = (await server.run_task("v.py", instruction="Raise MARK_ONE to 100."))["taskId"]
    # The buffers are frozen; the task is learning the window (GET /v1/models is held), so
    # its snapshot is neither sized nor built yet.
    top = types.Position(line=0, character=0)
    end = types.Position(line=8, character=0)
    server.change("v.py", 2, types.Range(start=end, end=end), TAIL_V2)
    server.change("v.py", 3, types.Range(start=top, end=top), HEAD_V2)
    # Let the server's debounced index update take v2 (50 ms debounce, one parse).
    await asyncio.sleep(1.0)
    GATE.set()

    [doc_edit] = await server.wait_for(lambda: edits_for(server, "v.py"), "the applyEdit")
    assert await wait_state(server, task_id, {"applied"}) == "applied"
    assert not model.errors

    # The prompt: v1 is in every request, nothing of v2 is.
    bodies = [json.dumps(r.messages) for r in model.requests]
    assert bodies and not any("import this_is_v2" in b for b in bodies)
    assert not any("def beta_added" in b for b in bodies)
    assert any("MARK_ONE = 1" in b for b in bodies)

    # The tools: every answer is v1's (lines as in v1, no v2-only names).
    defs_alpha, defs_beta, refs_alpha, grep_mark, grep_v2, read = _tool_results(model)
    assert defs_alpha == "v.py:1: function def alpha(x):"
    assert defs_beta == "no definition of 'beta_added'"
    assert refs_alpha.splitlines() == ["other.py:1: import alpha", "other.py:3: call alpha"]
    assert grep_mark == "v.py:5: MARK_ONE = 1"
    assert grep_v2 == "no matches for 'this_is_v2'"
    assert read.startswith("v.py lines 1-8 of 8\n")

    # The edits: computed against v1, sent at the current version and rebased onto v2.
    assert doc_edit.text_document.version == 3
    assert apply_text_edits(V2, doc_edit.edits) == V2.replace("MARK_ONE = 1", "MARK_ONE = 100")
    from lsp_agent.config import workspace_cache_dir
    from lsp_agent.tasks import TaskJournal

    cache = Path(server_env(server.root.parent)["LSP_AGENT_CACHE_DIR"])
    journal_path = workspace_cache_dir(server.root, {"LSP_AGENT_CACHE_DIR": str(cache)})
    with TaskJournal(journal_path / "tasks.sqlite") as journal:
        task = journal.get(task_id)
    assert task is not None and task.result is not None
    [change] = task.result["changes"]
    assert change["original_text"] == V1


async def test_the_snapshot_is_sized_by_the_window_the_server_reports(
    server: ServerUnderTest, model: ScriptedModel
) -> None:
    # The task above learned the window (n_ctx) before its snapshot was sized.
    task_id = next(t["id"] for t in await server.tasks())
    context: Any = await server.client.protocol.send_request_async(
        "lspAgent/context", {"taskId": task_id}
    )
    budget = context["budget"] if isinstance(context, dict) else context.budget
    reserve = Settings().context.reserve
    assert budget == sizing.snapshot_budget(N_CTX, kind="instruction", reserve=reserve)
    assert budget < sizing.snapshot_budget(
        sizing.DEFAULT_WINDOW, kind="instruction", reserve=reserve
    )
    assert model.model_lists == 1
