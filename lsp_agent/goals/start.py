"""Beginning and resuming a goal run: the one place the CLI and the server both call."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lsp_agent.config import Settings
from lsp_agent.goals import git
from lsp_agent.goals.budget import RunBudget
from lsp_agent.goals.ledger import RESUMABLE, Ledger
from lsp_agent.goals.runner import GoalRun
from lsp_agent.goals.store import RunStore, new_run_id, run_dir
from lsp_agent.tasks.model import Task

BRANCH_PREFIX = "lsp-agent/"


class GoalError(Exception):
    """A goal run cannot start or resume; the message says why and what to do."""


def new_ledger(root: Path, goal: str, budget: RunBudget) -> Ledger:
    """A fresh run: its branch starts at the workspace as it is now (HEAD plus uncommitted
    changes, captured without touching the user's index or files)."""
    if not goal.strip():
        raise GoalError("the goal is empty: say what the run should achieve")
    try:
        repo, _ = git.repo_of(root)
        run_id = new_run_id()
        base = git.workspace_commit(repo, f"lsp-agent: the workspace when goal run {run_id} began")
    except git.GitError as exc:
        raise GoalError(str(exc)) from None
    return Ledger(
        run_id=run_id,
        goal=goal.strip(),
        root=str(root),
        branch=BRANCH_PREFIX + run_id,
        base_commit=base,
        budgets=budget.to_json(),
        created_at=time.time(),
    )


def resumable(store: RunStore, run_id: str, budget: RunBudget | None) -> Ledger:
    """The ledger of a run to continue; a larger budget given now replaces the old one."""
    ledger = store.load(run_id)
    if ledger is None:
        raise GoalError(f"no goal run {run_id!r} in this workspace's journal (lsp-agent tasks)")
    if ledger.state not in RESUMABLE:
        raise GoalError(f"run {run_id} is {ledger.state}: {ledger.reason or 'nothing to resume'}")
    if budget is not None:
        old = RunBudget.from_json(ledger.budgets)
        ledger.budgets = RunBudget(
            budget.tokens or old.tokens, budget.cost or old.cost, budget.hours or old.hours
        ).to_json()
    return ledger


async def execute(
    ledger: Ledger,
    *,
    store: RunStore,
    settings: Settings,
    client: Any,
    provider: Any = None,
    jobs: int = 1,
    plan_only: bool = False,
    notify: Callable[[str], None] | None = None,
    on_task: Callable[[Task], None] | None = None,
) -> Ledger:
    with run_lock(Path(ledger.root), ledger.run_id):
        return await _execute(
            ledger, store, settings, client, provider, jobs, plan_only, notify, on_task
        )


@contextmanager
def run_lock(root: Path, run_id: str) -> Iterator[None]:
    """One process per run: a second ``--resume`` (or the server) would race the first on the
    branch. The lock is an flock, so a killed process releases it."""
    folder = run_dir(root, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GoalError(f"run {run_id} is running in another process") from None
        yield
    finally:
        os.close(fd)


def is_locked(root: Path, run_id: str) -> bool:
    """Is a process running this run now (holding its lock)?"""
    path = run_dir(root, run_id) / "lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken here
    return False


async def _execute(
    ledger: Ledger,
    store: RunStore,
    settings: Settings,
    client: Any,
    provider: Any,
    jobs: int,
    plan_only: bool,
    notify: Callable[[str], None] | None,
    on_task: Callable[[Task], None] | None,
) -> Ledger:
    run = GoalRun(
        ledger,
        store=store,
        client=client,
        settings=settings,
        provider=provider,
        jobs=jobs,
        plan_only=plan_only,
        notify=notify,
        on_task=on_task,
    )
    return await run.run()
