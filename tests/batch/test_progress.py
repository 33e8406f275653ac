"""Progress on stderr: plain lines off a terminal, a rich bar on one; never stdout."""

from __future__ import annotations

import io

from lsp_agent.batch.progress import BatchProgress
from lsp_agent.tasks.model import Task, TaskState


def _finish(task: Task, state: TaskState, prompt: int, cached: int) -> None:
    task.state = state
    task.usage = {
        "prompt_tokens": prompt,
        "completion_tokens": 10,
        "cached_tokens": cached,
        "requests": 3,
    }


def test_plain_lines_count_done_failed_and_tokens() -> None:
    stream = io.StringIO()
    ok, bad, old = Task.new({}, title="ok"), Task.new({}, title="bad"), Task.new({}, title="old")
    with BatchProgress(3, stream=stream, rich=False) as progress:
        old.state = TaskState.APPLIED
        progress.skipped(old)
        for task in (ok, bad):
            task.state = TaskState.RUNNING
            progress.update(task)
        _finish(ok, TaskState.SUCCEEDED, 100, 64)
        progress.update(ok)
        _finish(bad, TaskState.FAILED, 50, 0)
        bad.message = "model error (server): 500"
        progress.update(bad)
        progress.update(bad)  # a repeated update is not counted twice
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[1/3] old: applied (earlier run)"
    assert f"started {ok.id} ok" in lines
    assert f"[2/3] {ok.id} ok: succeeded (110 tokens, 64 cached)" in lines
    assert f"[3/3] {bad.id} bad: failed (60 tokens, 0 cached): model error (server): 500" in lines
    assert (progress.done, progress.failed, progress.tokens, progress.cached) == (3, 1, 170, 64)


def test_rich_bar_shows_running_failed_tokens_and_cached() -> None:
    stream = io.StringIO()
    task = Task.new({}, title="t")
    with BatchProgress(2, stream=stream, rich=True) as progress:
        task.state = TaskState.RUNNING
        progress.update(task)
        _finish(task, TaskState.SUCCEEDED, 1000, 512)
        progress.update(task)
        progress.note("a note")
    text = stream.getvalue()
    assert "1/2" in text and "tokens 1,010" in text and "cached 512" in text
    assert "a note" in text
    assert "started" not in text  # per-task lines are for plain output only
