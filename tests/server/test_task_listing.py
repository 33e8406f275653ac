"""``lspAgent/tasks`` over real stdio while another process (a batch run) writes the journal.

The listing reuses what it decoded and encoded at the last poll: these tests pin that every
change another connection makes — a new task, a state change, a prune — shows at the next
poll, and that the pre-encoded reply is valid JSON framed by its byte length (titles outside
ASCII included).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.config import workspace_cache_dir
from lsp_agent.tasks import Task, TaskJournal, TaskState
from tests.server.conftest import make_workspace, server_env
from tests.server.lsp_helpers import ServerUnderTest, start_server, stop_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

TITLE = "Rename naïve → “clean” 名前"


def _task(i: int, state: TaskState, title: str = "") -> Task:
    task = Task.new({"instruction": f"task {i}", "files": [f"pkg/m{i}.py"]}, title=title or f"t{i}")
    task.state = state
    task.created_at = time.time() - 1000 + i
    return task


async def _listing(server: ServerUnderTest) -> dict[str, dict[str, Any]]:
    tasks = await server.tasks()
    return {t["id"]: t for t in tasks}


async def test_the_listing_follows_another_process_writing_the_journal(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", {"a.py": "def a():\n    return 1\n"})
    env = server_env(tmp_path)
    journal_path = workspace_cache_dir(root.resolve(), env) / "tasks.sqlite"
    with TaskJournal(journal_path) as journal:
        done = [_task(i, TaskState.SUCCEEDED) for i in range(5)]
        named = _task(5, TaskState.SUCCEEDED, TITLE)
        for task in (*done, named):
            journal.record(task)
        server = await start_server(root, env=env)
        try:
            first = await _listing(server)
            assert set(first) == {t.id for t in (*done, named)}
            assert first[named.id]["title"] == TITLE
            assert first[done[2].id]["files"] == ["pkg/m2.py"]

            # A running task's progress lands in the journal between two polls.
            running = _task(10, TaskState.RUNNING)
            running.progress = 40
            journal.record(running)
            listed = await _listing(server)
            assert listed[running.id]["state"] == "running"
            assert listed[running.id]["progress"] == 40
            running.progress = 70
            journal.record(running)
            assert (await _listing(server))[running.id]["progress"] == 70

            # It finishes; an older task is pruned away.
            running.state = TaskState.FAILED
            running.message = "stopped"
            journal.record(running)
            assert journal.prune(keep_tasks=6, keep_days=0) == [done[0].id]
            listed = await _listing(server)
            assert done[0].id not in listed
            assert listed[running.id]["state"] == "failed"
            assert listed[running.id]["message"] == "stopped"
            assert [t["id"] for t in await server.tasks()][:2] == [running.id, named.id]
        finally:
            await stop_server(server)
