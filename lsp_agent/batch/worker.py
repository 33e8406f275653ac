"""The batch run's view of the worker: build a task's snapshot, run it, plan it for --dry-run.

One SnapshotBuilder serves every task of a run: the stable prefix is built once and persisted,
so each task's first request shares it byte for byte and the provider's prefix cache hits.
Snapshots are CPU work, so they are built in a thread, one at a time (the builder keeps state).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lsp_agent.agents.orchestrator import DryRunPlan, TaskResult, TaskSpec, plan_task, run_task
from lsp_agent.batch.plan import PlannedTask
from lsp_agent.config import Settings, workspace_cache_dir


class BatchWorker:
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
        self.cache_dir = workspace_cache_dir(Path(index.root))
        state_dir = self.cache_dir / "snapshot" if persist_prefix else None
        self._builder = SnapshotBuilder(index, settings.context, state_dir=state_dir)
        self.budget = budget_for(
            settings, model_name, kind=kind, provider=getattr(client, "provider", None)
        )
        self._lock = threading.Lock()

    def snapshot(self, task: PlannedTask) -> Any:
        with self._lock:
            return self._builder.build(
                budget=self.budget,
                focus=task.files,
                instruction=task.instruction,
                diagnostics=task.rendered_diagnostics,
            )

    def refresh(self, paths: Iterable[str]) -> None:
        """Files were written by --apply: later tasks must read (and hash) the new content."""
        with self._lock:
            self.index.refresh(list(paths))

    def plan(self, task: PlannedTask) -> tuple[DryRunPlan, Any]:
        snapshot = self.snapshot(task)
        return plan_task(TaskSpec(**task.spec_fields()), index=self.index, snapshot=snapshot), (
            snapshot
        )

    async def run(
        self, task: PlannedTask, task_id: str, progress: Callable[[Any], None]
    ) -> TaskResult:
        if self.client is None:
            raise RuntimeError("BatchWorker.run needs a model client")
        snapshot = await asyncio.to_thread(self.snapshot, task)
        return await run_task(
            TaskSpec(**task.spec_fields()),
            index=self.index,
            snapshot=snapshot,
            client=self.client,
            settings=self.settings,
            progress=progress,
            transcript_dir=self.cache_dir / "transcripts",
            task_id=task_id,
        )
