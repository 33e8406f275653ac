"""The handlers' helpers in-process: columns, progress wording, URIs, --tcp, the journal writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_agent.agents.records import ProgressEvent
from lsp_agent.commands.serve import parse_address
from lsp_agent.handlers.apply_edit import plan_file
from lsp_agent.handlers.journal_writer import DeferredJournal
from lsp_agent.handlers.roots import OpenDocument, Root, RootSet
from lsp_agent.handlers.taskflow import progress_message, python_column
from lsp_agent.handlers.uris import path_to_uri, uri_to_path
from lsp_agent.tasks.journal import TaskJournal
from lsp_agent.tasks.model import Task, TaskState


def test_python_column_counts_astral_characters_as_two_units() -> None:
    lines = ["x = '😀' + 'é'", "short"]
    assert python_column(lines, 0, 5) == 5  # before the emoji
    assert python_column(lines, 0, 7) == 6  # after it: two UTF-16 units, one character
    assert python_column(lines, 0, 13) == 12  # 'é' is one unit
    assert python_column(lines, 1, 99) == 5  # past the end clamps to the line
    assert python_column(lines, 7, 3) == 3  # unknown line: unchanged


@pytest.mark.parametrize(
    ("stage", "done", "total", "text", "percent"),
    [
        ("researching", 0, 1, "researching: reading", 5),
        ("coding", 0, 3, "coding file 1 of 3", 20),
        ("coding", 2, 3, "coding file 3 of 3", 50),
        ("coding", 3, 3, "coded 3 of 3 files", 65),
        ("reviewing", 0, 1, "reviewing: reading", 80),
        ("done", 1, 1, "done", 100),
    ],
)
def test_progress_message(stage: str, done: int, total: int, text: str, percent: int) -> None:
    assert progress_message(stage, "reading", done, total) == text
    assert ProgressEvent(stage, "reading", done, total).percent == percent


def test_progress_message_says_the_stage_once() -> None:
    assert progress_message("reviewing", "reviewing (round 2)", 0, 1) == "reviewing (round 2)"
    assert progress_message("reviewing", "reviewing", 0, 1) == "reviewing"


def test_uris_round_trip_and_refuse_outside(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / "pkg").mkdir()
    uri = path_to_uri(root, "pkg/mod one.py")
    assert uri.endswith("/pkg/mod%20one.py")
    assert uri_to_path(root, uri) == "pkg/mod one.py"
    with pytest.raises(ValueError, match="outside the workspace"):
        uri_to_path(root, path_to_uri(root, "../elsewhere.py"))
    with pytest.raises(ValueError, match="not a file URI"):
        uri_to_path(root, "untitled:Untitled-1")


def test_parse_address() -> None:
    assert parse_address("127.0.0.1:2087") == ("127.0.0.1", 2087)
    assert parse_address(":9000") == ("127.0.0.1", 9000)
    for bad in ("localhost", "host:port", "h:70000"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_address(bad)


def test_deferred_journal_coalesces_and_flushes_on_close(tmp_path: Path) -> None:
    path = tmp_path / "tasks.sqlite"
    journal = DeferredJournal(TaskJournal(path))
    task = Task.new({"instruction": "x", "files": ["a.py"]}, title="t")
    for percent in range(0, 101, 10):
        task.progress = percent
        journal.record(task)
    task.state = TaskState.SUCCEEDED
    journal.record(task)
    assert journal.get(task.id).state is TaskState.SUCCEEDED  # queued or written: latest wins
    applied = journal.set_state(task.id, TaskState.APPLIED, "applied")  # read-modify-write
    assert applied.progress == 100
    journal.close()
    with TaskJournal(path) as reopened:
        row = reopened.get(task.id)
    assert row is not None and row.state is TaskState.APPLIED and row.progress == 100


def _root(path: Path) -> Root:
    return Root(
        path=path.resolve(),
        uri=path_to_uri(path.parent, path.name),
        name=path.name,
        index_token="t",
    )


def test_a_document_belongs_to_the_innermost_folder(tmp_path: Path) -> None:
    roots = RootSet()
    outer, inner, other = tmp_path / "outer", tmp_path / "outer" / "lib", tmp_path / "other"
    for folder in (outer, inner, other):
        folder.mkdir(parents=True, exist_ok=True)
        roots.add(_root(folder))
    found, path = roots.find(path_to_uri(tmp_path, "outer/lib/pkg/mod.py"))
    assert found.path == inner.resolve() and path == "pkg/mod.py"
    found, path = roots.find(path_to_uri(tmp_path, "outer/main.py"))
    assert found.path == outer.resolve() and path == "main.py"
    with pytest.raises(ValueError, match="outside the workspace"):
        roots.find(path_to_uri(tmp_path, "elsewhere.py"))
    with pytest.raises(ValueError, match="outside the workspace"):
        roots.find(path_to_uri(tmp_path, "outer"))  # a folder itself is no document
    with pytest.raises(ValueError, match="already a workspace folder"):
        roots.add(_root(other))
    assert roots.unique_token("x") == "x" and roots.unique_token("x") == "x#2"


def test_a_tasks_edit_never_resolves_outside_its_own_folder(tmp_path: Path) -> None:
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    for folder in (alpha, beta):
        folder.mkdir()
        (folder / "m.py").write_text("x = 1\n")
    root = _root(alpha)
    change = {"path": "../beta/m.py", "original_text": "x = 1\n", "new_text": "x = 2\n"}
    with pytest.raises(ValueError, match="outside the workspace root"):
        plan_file(root, change)
    inside = plan_file(root, {**change, "path": "m.py"})
    assert inside.uri == path_to_uri(alpha, "m.py") and inside.version is None
    root.documents["m.py"] = OpenDocument(path_to_uri(alpha, "m.py"), "m.py", 5, "x = 1\n")
    assert plan_file(root, {**change, "path": "./m.py"}).version == 5  # the buffer, normalized


async def test_shutdown_answers_while_the_worker_thread_is_busy(tmp_path: Path) -> None:
    """A worker thread in the middle of CPU work must not hold the shutdown answer (it used
    to be joined on the loop for up to 5 s); the journal's queued states are still written."""
    import threading
    import time

    from lsp_agent.handlers.server import build_server
    from lsp_agent.handlers.worker_loop import WorkerLoop

    server, session = build_server()
    shutdown = server.protocol.fm.features["shutdown"]
    worker = WorkerLoop()
    session.worker = worker
    joined_on: list[threading.Thread] = []
    close = worker.close

    def recording_close(timeout: float = 5.0) -> None:
        joined_on.append(threading.current_thread())
        close(timeout)

    worker.close = recording_close  # type: ignore[method-assign]
    release = threading.Event()
    worker._loop.call_soon_threadsafe(lambda: release.wait(30))  # busy until released
    root = _root(tmp_path)
    root.journal = DeferredJournal(TaskJournal(tmp_path / "tasks.sqlite"))
    session.roots.add(root)
    task = Task.new({"files": ["a.py"]})
    task.state = TaskState.CANCELLED
    root.journal.record(task)
    started = time.monotonic()
    await shutdown(None)
    answered_while_busy = worker._thread.is_alive()
    release.set()
    worker._thread.join(10)
    assert answered_while_busy, "shutdown waited for the busy worker thread"
    assert joined_on and threading.main_thread() not in joined_on, "joined on the LSP loop"
    assert time.monotonic() - started < 30  # a hang guard only
    with TaskJournal(tmp_path / "tasks.sqlite") as journal:
        assert journal.get(task.id).state is TaskState.CANCELLED  # type: ignore[union-attr]
