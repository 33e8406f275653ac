"""One version per batch task: another task's --apply rewrites a file while this task runs; this
task's tools keep answering from the version its snapshot showed (context/view.TaskView pinned
by BatchTaskFlow.refresh), and its snapshot is sized by the window the model's server reports."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from lsp_agent.agents import sizing
from lsp_agent.batch.plan import PlannedTask
from lsp_agent.batch.taskflow import BatchTaskFlow
from lsp_agent.config import Settings
from tests.agents.test_orchestrator import make_client, make_workspace
from tests.support.scripted_model import ScriptedModel

OLD = "def shared(x):\n    return x\n"
NEW = "\n\n\ndef shared(x, y=0):\n    return x + y\n\n\ndef added():\n    return 1\n"
CALLS = [
    {"name": "read_file", "arguments": {"path": "shared.py"}},
    {"name": "find_definitions", "arguments": {"name": "shared"}},
    {"name": "grep", "arguments": {"pattern": "def added"}},
]


def test_a_file_rewritten_by_another_task_stays_at_this_tasks_version(tmp_path: Path) -> None:
    index = make_workspace(tmp_path / "ws", {"shared.py": OLD, "mine.py": "VALUE = 1\n"})
    worker: BatchTaskFlow | None = None

    def hook(body: dict[str, Any]) -> dict[str, Any] | None:
        messages = body["messages"]
        if messages[-1]["role"] == "tool":  # the researcher read what it needed: nothing to do
            args = {"targets": [], "notes": "nothing to change in mine.py"}
            return {"tool_calls": [{"name": "submit_plan", "arguments": args}]}
        # Another task of the run applies its change now (what engine._apply does).
        (index.root / "shared.py").write_text(NEW)
        assert worker is not None
        worker.refresh(["shared.py"], {"shared.py": OLD})
        return {"tool_calls": CALLS}

    with ScriptedModel(hook=hook, n_ctx=32_768) as model:
        client = make_client(model)
        settings = Settings()
        worker = BatchTaskFlow(index, settings, model_name="m", client=client, persist_prefix=False)
        task = PlannedTask("mine.py", ["mine.py"], "t", "Look at shared.", "refactor")

        async def run() -> Any:
            try:
                return await worker.run(task, "t-000000000001", lambda event: None)
            finally:
                await client.aclose()

        result = asyncio.run(run())
        assert not model.errors
        assert result.state == "no_changes", result.error
        results = [m["content"] for m in model.requests[1].messages if m["role"] == "tool"]
        read, defs, grep = results
        assert read == "shared.py lines 1-2 of 2\n    1| def shared(x):\n    2|     return x"
        assert defs == "shared.py:1: function def shared(x):"
        assert grep == "no matches for 'def added'"
        assert "def added" not in json.dumps(model.requests[0].messages)
        # Later tasks read the new text: the live index took it.
        assert index.text("shared.py") == NEW and index.definitions("added")
        # The snapshot was sized by the reported window (32,768), not the 128k preset.
        reserve = settings.context.reserve
        assert worker.budget == sizing.snapshot_budget(32_768, kind="refactor", reserve=reserve)
