"""Progress on stderr: a rich progress bar on a terminal, plain lines otherwise.

stdout carries only the diff or the JSON report, so both displays write to stderr. The plain
form prints one line per transition that matters (started, finished) — readable in CI logs.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lsp_agent.tasks.model import Task, TaskState

_OK = (TaskState.SUCCEEDED, TaskState.NO_CHANGES, TaskState.APPLIED)


class BatchProgress:
    def __init__(self, total: int, *, stream: TextIO | None = None, rich: bool | None = None):
        self.stream = stream or sys.stderr
        self.total = total
        self.done = 0
        self.failed = 0
        self.tokens = 0
        self.cached = 0
        self._running: set[str] = set()
        self._finished: set[str] = set()
        self._usage: dict[str, tuple[int, int]] = {}
        use_rich = self.stream.isatty() if rich is None else rich
        self._progress: Progress | None = None
        if use_rich:
            console = Console(file=self.stream)
            self._progress = Progress(
                TextColumn("[bold]tasks"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            self._bar = self._progress.add_task("tasks", total=total, status="")

    def __enter__(self) -> BatchProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._refresh()
            self._progress.stop()

    def skipped(self, task: Task) -> None:
        """A task finished in an earlier run (--resume)."""
        self._finished.add(task.id)
        self.done += 1
        self._line(f"[{self.done}/{self.total}] {task.title}: {task.state} (earlier run)")
        self._refresh()

    def update(self, task: Task) -> None:
        self._usage[task.id] = (
            task.usage["prompt_tokens"] + task.usage["completion_tokens"],
            task.usage["cached_tokens"],
        )
        self.tokens = sum(t for t, _ in self._usage.values())
        self.cached = sum(c for _, c in self._usage.values())
        if task.state is TaskState.RUNNING:
            if task.id not in self._running:
                self._running.add(task.id)
                self._line(f"started {task.id} {task.title}")
        elif task.state.finished and task.id not in self._finished:
            self._running.discard(task.id)
            self._finished.add(task.id)
            self.done += 1
            if task.state not in _OK:
                self.failed += 1
            usage = f"{self._usage[task.id][0]} tokens, {task.usage['cached_tokens']} cached"
            if task.usage.get("estimated_tokens"):
                usage += f", {task.usage['estimated_tokens']} estimated"
            shown = task.state not in _OK or task.state is TaskState.NO_CHANGES
            detail = f": {task.message}" if shown and task.message else ""
            self._line(
                f"[{self.done}/{self.total}] {task.id} {task.title}: {task.state} ({usage}){detail}"
            )
        self._refresh()

    def note(self, message: str) -> None:
        """A line that is not about one task (indexing, apply conflicts)."""
        if self._progress is not None:
            self._progress.console.print(message, markup=False, highlight=False)
        else:
            print(message, file=self.stream, flush=True)

    def _line(self, message: str) -> None:
        if self._progress is None:
            print(message, file=self.stream, flush=True)

    def _refresh(self) -> None:
        if self._progress is None:
            return
        status = (
            f"running {len(self._running)}  failed {self.failed}  "
            f"tokens {self.tokens:,}  cached {self.cached:,}"
        )
        self._progress.update(self._bar, completed=self.done, status=status)
