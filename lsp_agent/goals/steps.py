"""One step of a goal run: a verified task (``run_task``) on a worktree, then a commit.

A ``StepTree`` is a checkout with its own index and snapshot builder: the run's tree (on the
run's branch) or, for steps that run alongside others, a detached worktree of its own that is
merged back in plan order. A step reads the tree as the earlier steps left it; its changes are
written there (atomically, hash-checked: ``batch.apply.apply_changes``) and committed with the
step's summary as the message and the step's key as a trailer, which is what resume trusts.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.agents.orchestrator import TaskSpec, run_task
from lsp_agent.batch.apply import APPLIED, apply_changes
from lsp_agent.config import Settings
from lsp_agent.goals import git
from lsp_agent.goals.acceptance import RUNS, AcceptanceRun
from lsp_agent.goals.plan import Step
from lsp_agent.tasks.model import Task, TaskState
from lsp_agent.tasks.runner import TaskRunner

DONE_STATES = (TaskState.SUCCEEDED, TaskState.NO_CHANGES)


@dataclass
class StepTree:
    top: Path  # the worktree
    root: Path  # the workspace root inside it (the top unless the workspace is a subfolder)
    index: Any  # WorkspaceIndex over root
    builder: Any  # SnapshotBuilder
    own: bool  # a step's own worktree: removed once merged
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self, budget: int, step: Step) -> Any:
        with self.lock:
            # Files the step will create are not in the index yet: only existing ones focus.
            focus = [path for path in step.files if self.index.get(path) is not None]
            return self.builder.build(budget=budget, focus=focus, instruction=step.instructions)

    def refresh(self, paths: list[str]) -> None:
        with self.lock:
            self.index.refresh(paths)


def open_tree(
    top: Path, prefix: str, settings: Settings, *, own: bool, state_dir: Path | None
) -> StepTree:
    """Index a checkout (blocking: call it in a thread)."""
    from lsp_agent.context.snapshot import SnapshotBuilder
    from lsp_agent.index import WorkspaceIndex

    root = top / prefix if prefix else top
    cache = None if own else (state_dir / "index.sqlite" if state_dir else None)
    index = WorkspaceIndex(root, settings.index, cache_path=cache)
    index.build()
    snapshot_dir = None if own or state_dir is None else state_dir / "snapshot"
    builder = SnapshotBuilder(index, settings.context, state_dir=snapshot_dir)
    return StepTree(top, root.resolve(), index, builder, own)


@dataclass
class Attempt:
    """A step attempt that ended: its journaled task, and its commit when it finished."""

    step: Step
    task: Task
    tree: StepTree
    base: str  # the tree's HEAD when the step started
    commit: str | None = None
    error: str = ""  # why it did not finish (the task's error, or a write failure)
    seconds: float = 0.0
    limits_bound: bool = False  # the run's budget, not the step's, limited it

    @property
    def finished(self) -> bool:
        return self.commit is not None


def step_instruction(step: Step) -> str:
    lines = [f"Goal step {step.key}: {step.title}", "", step.instructions.strip()]
    if step.acceptance.value:
        lines += ["", "Acceptance check (" + step.acceptance.to_text() + ")"]
    return "\n".join(lines)


async def run_step(
    step: Step,
    tree: StepTree,
    *,
    run_id: str,
    ledger_text: str,
    client: Any,
    settings: Settings,
    runner: TaskRunner,
    snapshot_budget: int,
    transcript_dir: Path,
    workspace: Path | None = None,
    limits_bound: bool = False,
    on_commit: Callable[[Attempt], None] | None = None,
) -> Attempt:
    """Run ``step`` as a task on ``tree``, check its acceptance, commit it. ``workspace`` is the
    folder the tree is a worktree of: verification sees the tree at its path and uses its
    ``.venv`` (read-only), which the worktree lacks (it is gitignored)."""
    started = time.monotonic()
    environment = workspace or tree.root
    base = await asyncio.to_thread(git.head, tree.top)
    spec = TaskSpec(
        instruction=step_instruction(step),
        kind="instruction",
        files=list(step.files),
        title=step.title,
        ledger=ledger_text,
    )
    task = Task.new(spec.to_json(), title=step.title, run_id=run_id, key=step.key)

    async def work(report: Callable[[Any], None]) -> Any:
        snapshot = await asyncio.to_thread(tree.snapshot, snapshot_budget, step)
        result = await run_task(
            spec,
            index=tree.index,
            snapshot=snapshot,
            client=client,
            settings=settings,
            progress=report,
            transcript_dir=transcript_dir,
            task_id=task.id,
            environment=environment,
        )
        if result.state in DONE_STATES and step.acceptance.kind in RUNS:
            await _accept(step, tree, environment, result, settings, report)
        return result

    finished = await runner.start(task, work)
    attempt = Attempt(step, finished, tree, base, limits_bound=limits_bound)
    if finished.state in DONE_STATES:
        try:
            attempt.commit = await asyncio.to_thread(_write_and_commit, attempt, run_id)
        except (git.GitError, OSError) as exc:
            attempt.error = f"could not commit the step: {exc}"
    else:
        result = finished.result or {}
        attempt.error = str(result.get("error") or finished.message or finished.state)
    attempt.seconds = time.monotonic() - started
    if attempt.commit and on_commit is not None:
        on_commit(attempt)
    return attempt


async def _accept(
    step: Step,
    tree: StepTree,
    environment: Path,
    result: Any,
    settings: Settings,
    report: Callable[[Any], None],
) -> None:
    """Run the step's acceptance check on its result; a failure makes the task ``unverified``
    (its changes kept, nothing committed) with the check's output as the error."""
    from lsp_agent.agents.records import ProgressEvent
    from lsp_agent.agents.verification import resolve_checks
    from lsp_agent.config import workspace_cache_dir

    checks, _ = resolve_checks(tree.root, settings, environment=environment)
    job = AcceptanceRun(
        step.acceptance,
        tree.root,
        environment,
        {c.path: c.new_text for c in result.changes},
        settings,
        checks,
        workspace_cache_dir(environment) / "verify" / "scratch",
    )
    report(ProgressEvent("verifying", f"acceptance check: {step.acceptance.to_text()}", 0, 1))
    try:
        outcome = await asyncio.to_thread(job.run)
    except asyncio.CancelledError:
        job.cancel.set()  # the thread's sandboxed command stops; the thread then ends
        raise
    verification = dict(result.verification or {})
    verification["acceptance_run"] = outcome.record
    result.verification = verification
    if not outcome.passed:
        result.state, result.error = "unverified", outcome.error
    report(
        ProgressEvent(
            "verifying", "acceptance check " + ("passed" if outcome.passed else "failed"), 1, 1
        )
    )


def _write_and_commit(attempt: Attempt, run_id: str) -> str:
    task, tree = attempt.task, attempt.tree
    changes = list((task.result or {}).get("changes") or [])
    outcomes = apply_changes(tree.root, changes)
    failed = [o for o in outcomes if o.status != APPLIED]
    if failed:
        git.clean(tree.top)
        raise OSError("; ".join(f"{o.path}: {o.message or o.status}" for o in failed))
    summary = str((task.result or {}).get("summary") or "")
    commit = git.commit_step(
        tree.top, run_id=run_id, key=attempt.step.key, title=attempt.step.title, summary=summary
    )
    if not tree.own and changes:
        tree.refresh([str(c["path"]) for c in changes])
    return commit
