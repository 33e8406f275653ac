"""One batch task from its spec to its result (the batch's counterpart of handlers/taskflow.py):
build the task's snapshot, run the worker on it, or plan it for --dry-run.

One SnapshotBuilder serves every task of a run: the stable prefix is built once and persisted,
so each task's first request shares it byte for byte and the provider's prefix cache hits.
Snapshots are CPU work, so they are built in a thread, one at a time (the builder keeps state).
Each task reads one version of the files (``context.view.TaskView``): its snapshot and its tools
read the same view, and a file that ``--apply`` rewrites while a task runs stays pinned, for
that task, at the text its snapshot showed (the run's overlap rebase takes it from there).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from lsp_agent.agents.orchestrator import (
    DryRunPlan,
    TaskResult,
    TaskSpec,
    learned_budget,
    plan_task,
    run_task,
)
from lsp_agent.batch.plan import PlannedTask
from lsp_agent.config import Settings, workspace_cache_dir
from lsp_agent.context.view import TaskView


class BatchTaskFlow:
    def __init__(
        self,
        index: Any,
        settings: Settings,
        *,
        model_name: str | None,
        kind: str = "refactor",
        client: Any = None,
        persist_prefix: bool = True,
    ) -> None:
        from lsp_agent.context.snapshot import SnapshotBuilder, budget_for

        self.index = index
        self.settings = settings
        self.client = client
        self.kind = kind
        self.cache_dir = workspace_cache_dir(Path(index.root))
        state_dir = self.cache_dir / "snapshot" if persist_prefix else None
        self._builder = SnapshotBuilder(index, settings.context, state_dir=state_dir)
        self.budget = budget_for(
            settings, model_name, kind=kind, provider=getattr(client, "provider", None)
        )
        self._lock = threading.Lock()
        self._views: set[TaskView] = set()  # the views of running tasks

    def snapshot(self, task: PlannedTask, view: TaskView | None = None) -> Any:
        with self._lock:
            return self._builder.build(
                budget=self.budget,
                focus=task.files,
                instruction=task.instruction,
                diagnostics=task.rendered_diagnostics,
                view=view,
            )

    def refresh(self, paths: Iterable[str], before: Mapping[str, str] | None = None) -> None:
        """Files were written by --apply: later tasks must read (and hash) the new content.
        ``before`` (path -> the text the write replaced) stays pinned in the views of running
        tasks, so they keep the version they started from."""
        paths = list(paths)
        with self._lock:
            for view in list(self._views):
                for path, text in (before or {}).items():
                    view.pin(path, text)  # the index still holds that text's entry
            self.index.refresh(paths)

    def plan(self, task: PlannedTask) -> tuple[DryRunPlan, Any]:
        snapshot = self.snapshot(task)
        return plan_task(TaskSpec(**task.spec_fields()), index=self.index, snapshot=snapshot), (
            snapshot
        )

    async def run(
        self, task: PlannedTask, task_id: str, progress: Callable[[Any], None]
    ) -> TaskResult:
        if self.client is None:
            raise RuntimeError("BatchTaskFlow.run needs a model client")
        # Sized by the window the model's server reports (learned once per client).
        self.budget = await learned_budget(self.settings, self.client, kind=self.kind)
        view = TaskView(self.index)
        with self._lock:
            self._views.add(view)
        try:
            snapshot = await asyncio.to_thread(self.snapshot, task, view)
            return await run_task(
                TaskSpec(**task.spec_fields()),
                index=view,
                snapshot=snapshot,
                client=self.client,
                settings=self.settings,
                progress=progress,
                transcript_dir=self.cache_dir / "transcripts",
                task_id=task_id,
            )
        finally:
            with self._lock:
                self._views.discard(view)
