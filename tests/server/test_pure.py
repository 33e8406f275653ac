"""The handlers' helpers in-process: columns, progress wording, URIs, --tcp, the journal writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_agent.commands.serve import parse_address
from lsp_agent.handlers.journal_writer import DeferredJournal
from lsp_agent.handlers.taskflow import progress_message, python_column
from lsp_agent.handlers.uris import path_to_uri, uri_to_path
from lsp_agent.tasks import Task, TaskJournal, TaskState


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
        ("coding", 2, 3, "coding file 3 of 3", 60),
        ("coding", 3, 3, "coded 3 of 3 files", 80),
        ("reviewing", 0, 1, "reviewing: reading", 80),
        ("done", 1, 1, "done", 100),
    ],
)
def test_progress_message(stage: str, done: int, total: int, text: str, percent: int) -> None:
    assert progress_message(stage, "reading", done, total) == (text, percent)


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
