"""The task journal and runner: round trips through SQLite, state transitions, cancellation."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.tasks.journal import TaskJournal
from lsp_agent.tasks.model import Task, TaskState, task_summary, to_jsonable
from lsp_agent.tasks.runner import TaskRunner


@dataclass
class FakeUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    requests: int = 0


@dataclass
class FakeChange:
    path: str
    original_sha256: str
    new_text: str


@dataclass
class FakeResult:
    state: str
    title: str = ""
    summary: str = ""
    changes: list[FakeChange] = field(default_factory=list)
    usage: FakeUsage = field(default_factory=FakeUsage)
    error: str | None = None
    transcript: Path | None = None


@dataclass
class Event:
    stage: str
    message: str
    done: int
    total: int


def test_task_ids_are_t_and_12_hex() -> None:
    task = Task.new({"files": ["a.py"], "title": "Fix a"})
    assert task.id.startswith("t-") and len(task.id) == 14
    int(task.id[2:], 16)
    assert task.title == "Fix a"
    assert Task.new({}).id != task.id


def test_journal_round_trip_keeps_spec_result_and_usage(tmp_path: Path) -> None:
    path = tmp_path / "j" / "tasks.sqlite"
    task = Task.new({"instruction": "rename", "files": ["pkg/a.py"]}, run_id="r-1", key="pkg/a.py")
    result = FakeResult(
        "succeeded",
        title="Rename",
        changes=[FakeChange("pkg/a.py", "ab" * 32, "x = 1\n")],
        usage=FakeUsage(100, 20, 64, 3),
        transcript=tmp_path / "t.jsonl",
    )
    task.result = to_jsonable(result)
    task.state = TaskState.SUCCEEDED
    task.usage = {"prompt_tokens": 100, "completion_tokens": 20, "cached_tokens": 64, "requests": 3}
    with TaskJournal(path) as journal:
        journal.record(task)
    # A new connection (a restarted server) sees the finished, unapplied result.
    with TaskJournal(path) as journal:
        loaded = journal.get(task.id)
        assert loaded is not None
        assert loaded.state is TaskState.SUCCEEDED
        assert loaded.spec == {"instruction": "rename", "files": ["pkg/a.py"]}
        assert loaded.result is not None
        assert loaded.result["changes"][0]["new_text"] == "x = 1\n"
        assert loaded.result["transcript"] == str(tmp_path / "t.jsonl")
        assert loaded.usage["cached_tokens"] == 64
        assert loaded.files == ["pkg/a.py"]
        assert (loaded.run_id, loaded.key) == ("r-1", "pkg/a.py")
        applied = journal.mark_applied(task.id)
        assert applied.state is TaskState.APPLIED
        assert journal.get(task.id).state is TaskState.APPLIED  # type: ignore[union-attr]
        assert journal.get("t-000000000000") is None
        with pytest.raises(KeyError):
            journal.mark_applied("t-000000000000")


def test_journal_list_filters_by_run_newest_first(tmp_path: Path) -> None:
    with TaskJournal(tmp_path / "tasks.sqlite") as journal:
        tasks = [Task.new({}, run_id="r-a" if i % 2 else "r-b", key=str(i)) for i in range(5)]
        for offset, task in enumerate(tasks):
            task.created_at = 1000.0 + offset
            journal.record(task)
        assert [t.key for t in journal.list()] == ["4", "3", "2", "1", "0"]
        assert [t.key for t in journal.list(run_id="r-a")] == ["3", "1"]
        assert len(journal.list(limit=2)) == 2


def test_runs_are_found_by_fingerprint(tmp_path: Path) -> None:
    with TaskJournal(tmp_path / "tasks.sqlite") as journal:
        assert journal.latest_run("fp") is None
        first = journal.start_run("fp", {"instruction": "x"})
        journal.start_run("other", {})
        latest = journal.latest_run("fp")
        assert latest is not None and latest.id == first.id and latest.finished_at is None
        journal.finish_run(first.id)
        assert journal.latest_run("fp").finished_at is not None  # type: ignore[union-attr]


async def test_runner_records_transitions_and_result(tmp_path: Path) -> None:
    journal = TaskJournal(tmp_path / "tasks.sqlite")
    seen: list[tuple[TaskState, int]] = []
    runner = TaskRunner(
        concurrency=2, journal=journal, on_update=lambda t: seen.append((t.state, t.progress))
    )

    async def work(progress: Any) -> FakeResult:
        progress(Event("coding", "coder 1/2", 1, 2))
        return FakeResult("succeeded", title="Done", usage=FakeUsage(10, 5, 8, 2))

    task = Task.new({"files": ["a.py"]})
    finished = await runner.start(task, work)
    assert finished.state is TaskState.SUCCEEDED
    assert (TaskState.RUNNING, 50) in seen
    assert seen[0][0] is TaskState.QUEUED and seen[-1] == (TaskState.SUCCEEDED, 100)
    stored = journal.get(task.id)
    assert stored is not None and stored.state is TaskState.SUCCEEDED
    assert stored.usage == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cached_tokens": 8,
        "requests": 2,
        "attempts": 0,
        "estimated_tokens": 0,
    }
    assert stored.title == "Done" and stored.duration_s is not None


async def test_runner_limits_concurrency_and_maps_failures(tmp_path: Path) -> None:
    runner = TaskRunner(concurrency=2)
    live = 0
    peak = 0
    gate = asyncio.Event()

    async def work(progress: Any) -> FakeResult:
        nonlocal live, peak
        live += 1
        peak = max(peak, live)
        await gate.wait()
        live -= 1
        return FakeResult("no_changes")

    async def boom(progress: Any) -> FakeResult:
        raise RuntimeError("model exploded")

    tasks = [Task.new({}) for _ in range(5)]
    for task in tasks:
        runner.start(task, work)
    failing = Task.new({})
    runner.start(failing, boom)
    for _ in range(10):
        await asyncio.sleep(0)
    assert peak == 2 and len(runner.active()) == 6
    gate.set()
    await runner.wait()
    assert [t.state for t in tasks] == [TaskState.NO_CHANGES] * 5
    assert failing.state is TaskState.FAILED and "model exploded" in failing.message
    assert runner.active() == []


async def test_runner_holds_live_tasks_and_only_the_newest_finished(tmp_path: Path) -> None:
    journal = TaskJournal(tmp_path / "tasks.sqlite")
    runner = TaskRunner(concurrency=2, journal=journal, keep_finished=3)
    gate = asyncio.Event()

    async def done(progress: Any) -> FakeResult:
        return FakeResult("succeeded")

    async def held(progress: Any) -> FakeResult:
        await gate.wait()
        return FakeResult("succeeded")

    waiting = Task.new({})
    runner.start(waiting, held)  # started first: the oldest, but live
    finished = [Task.new({}) for _ in range(10)]
    for task in finished:
        await runner.start(task, done)
    assert list(runner.tasks) == [waiting.id, *(t.id for t in finished[-3:])]
    # The journal is the record of the ones memory let go.
    assert all(journal.get(t.id).state is TaskState.SUCCEEDED for t in finished)  # type: ignore[union-attr]
    gate.set()
    await runner.wait()
    assert waiting.id in runner.tasks and len(runner.tasks) == 3


def test_server_keeps_the_manifests_of_recent_tasks_only() -> None:
    from lsp_agent.handlers.session import RecentManifests

    manifests = RecentManifests(limit=2)
    for task_id in ("t-1", "t-2", "t-3"):
        manifests[task_id] = {"files": [task_id]}
    assert list(manifests) == ["t-2", "t-3"] and manifests.get("t-1") is None


async def test_cancel_running_and_queued_tasks(tmp_path: Path) -> None:
    journal = TaskJournal(tmp_path / "tasks.sqlite")
    runner = TaskRunner(concurrency=1, journal=journal)
    started = asyncio.Event()

    async def forever(progress: Any) -> FakeResult:
        started.set()
        await asyncio.sleep(3600)
        return FakeResult("succeeded")

    running, queued = Task.new({}), Task.new({})
    runner.start(running, forever)
    runner.start(queued, forever)
    await started.wait()
    assert runner.cancel(queued.id) and runner.cancel(running.id)
    await runner.wait()
    assert running.state is TaskState.CANCELLED and queued.state is TaskState.CANCELLED
    assert queued.started_at is None
    assert journal.get(running.id).state is TaskState.CANCELLED  # type: ignore[union-attr]
    assert not runner.cancel(running.id)


def test_tasks_left_running_by_a_dead_process_are_marked_interrupted(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "tasks.sqlite"
    # A separate process journals a running task, then dies without finishing it (like a
    # killed server or batch run).
    script = textwrap.dedent(
        f"""
        from lsp_agent.tasks.journal import TaskJournal
        from lsp_agent.tasks.model import Task, TaskState
        journal = TaskJournal({str(path)!r})
        task = Task.new({{"instruction": "x", "files": []}}, title="orphan")
        task.state = TaskState.RUNNING
        journal.record(task)
        print(task.id)
        """
    )
    orphan_id = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.strip()

    live = Task.new({"instruction": "y", "files": []}, title="mine")
    live.state = TaskState.RUNNING
    with TaskJournal(path) as journal:
        assert journal.interrupted == [orphan_id]
        journal.record(live)
        orphan = journal.get(orphan_id)
        assert orphan is not None and orphan.state is TaskState.FAILED
        assert "interrupted" in orphan.message
    # This process is alive: reopening leaves its running task alone.
    with TaskJournal(path) as journal:
        assert journal.interrupted == []
        again = journal.get(live.id)
        assert again is not None and again.state is TaskState.RUNNING


def test_listing_from_columns_equals_the_full_rows(tmp_path: Path) -> None:
    """``summaries`` reads the small columns only; it must say what ``task_summary`` of the
    full row says, for tasks with and without results, and see writes of another connection."""
    path = tmp_path / "tasks.sqlite"
    with TaskJournal(path) as journal, TaskJournal(path) as other:
        done = Task.new({"instruction": "x", "files": ["asked.py"]}, run_id="r-1", key="k")
        done.result = to_jsonable(
            FakeResult("succeeded", changes=[FakeChange("changed.py", "0" * 64, "y\n")])
        )
        done.state, done.usage["prompt_tokens"] = TaskState.SUCCEEDED, 70
        queued = Task.new({"files": ["b.py"]})
        queued.created_at = done.created_at + 1
        for task in (done, queued):
            journal.record(task)
        listed = journal.summaries()
        assert [row.summary for row in listed] == [
            task_summary(journal.get(queued.id)),  # type: ignore[arg-type]
            task_summary(journal.get(done.id)),  # type: ignore[arg-type]
        ]
        assert listed[1].summary["files"] == ["changed.py"]  # the result's, not the spec's
        assert [row.summary["id"] for row in journal.summaries(run_id="r-1")] == [done.id]
        queued.state = TaskState.RUNNING
        other.record(queued)  # a batch process writing the shared journal
        assert journal.summaries()[0].summary["state"] == "running"


def test_a_journal_from_before_the_files_column_is_listed_with_its_files(tmp_path: Path) -> None:
    import json
    import sqlite3

    path = tmp_path / "tasks.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE tasks (id TEXT PRIMARY KEY, run_id TEXT NOT NULL DEFAULT '', key TEXT NOT "
        "NULL DEFAULT '', state TEXT NOT NULL, title TEXT NOT NULL DEFAULT '', progress INTEGER "
        "NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '', usage TEXT NOT NULL, spec TEXT NOT "
        "NULL, result TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL, started_at REAL, "
        "finished_at REAL, owner TEXT NOT NULL DEFAULT '');"
    )
    result = {"state": "succeeded", "changes": [{"path": "pkg/m.py", "new_text": "x\n"}]}
    old.execute(
        "INSERT INTO tasks (id, state, usage, spec, result, created_at, updated_at) "
        "VALUES ('t-000000000001', 'succeeded', '{}', ?, ?, 1.0, 1.0)",
        (json.dumps({"files": ["asked.py"]}), json.dumps(result)),
    )
    old.commit()
    old.close()
    with TaskJournal(path) as journal:
        (row,) = journal.summaries()
        assert row.summary["files"] == ["pkg/m.py"]
        assert row.summary["state"] == "succeeded"


async def test_progress_never_goes_back_when_a_stage_comes_round_again() -> None:
    from lsp_agent.agents.records import ProgressEvent

    seen: list[int] = []
    runner = TaskRunner(on_update=lambda t: seen.append(t.progress))

    async def work(progress: Any) -> FakeResult:
        for event in (
            ProgressEvent("researching", "reading"),
            ProgressEvent("coding", "a.py", 1, 2),
            ProgressEvent("reviewing", "round 1"),
            ProgressEvent("coding", "a.py", 0, 1),  # review findings: the coders again
            ProgressEvent("reviewing", "round 2"),
        ):
            progress(event)
        return FakeResult("succeeded")

    await runner.start(Task.new({}), work)
    assert seen == sorted(seen), seen
    assert 80 in seen and seen[-1] == 100


def test_prune_keeps_the_newest_and_the_live_and_deletes_transcripts(tmp_path: Path) -> None:
    import time

    transcripts = tmp_path / "transcripts"
    transcripts.mkdir()
    with TaskJournal(tmp_path / "tasks.sqlite") as journal:
        tasks = []
        for i in range(6):
            task = Task.new({}, key=str(i))
            task.state = TaskState.RUNNING if i == 0 else TaskState.SUCCEEDED
            task.created_at = time.time() - (400 - i) * 86400 if i < 2 else time.time() - 10 + i
            journal.record(task)
            (transcripts / f"{task.id}.jsonl").write_text("{}\n")
            tasks.append(task)
        # 0: running and ancient (stays); 1: finished, 399 days old (goes by age);
        # 2..5: recent; keep_tasks=3 keeps 3..5 of the finished ones, so 2 goes by count.
        deleted = journal.prune(keep_tasks=3, keep_days=90, transcripts=transcripts)
        assert deleted == sorted([tasks[1].id, tasks[2].id])
        assert [t.key for t in journal.list()] == ["5", "4", "3", "0"]
        assert sorted(p.stem for p in transcripts.iterdir()) == sorted(
            t.id for t in tasks if t.id not in deleted
        )
        assert journal.prune(keep_tasks=0, keep_days=0) == []  # no limits: nothing goes
