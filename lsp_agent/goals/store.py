"""Where goal runs live: the ledger in the workspace's task journal (a ``runs`` row whose meta
is the ledger), each step attempt as a task row (``run_id`` = the run, ``key`` = the step), and
the run's folder (worktrees, transcripts) under the workspace cache."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from lsp_agent.config import workspace_cache_dir
from lsp_agent.goals.ledger import Ledger
from lsp_agent.tasks.journal import TaskJournal

FINGERPRINT = "goal"  # the runs rows of goal runs (batch runs use their command's hash)


def new_run_id() -> str:
    return f"g-{secrets.token_hex(6)}"


def journal_for(root: Path) -> TaskJournal:
    return TaskJournal(workspace_cache_dir(root) / "tasks.sqlite")


def run_dir(root: Path, run_id: str) -> Path:
    return workspace_cache_dir(root) / "goals" / run_id


class RunStore:
    def __init__(self, journal: TaskJournal) -> None:
        self.journal = journal

    def create(self, ledger: Ledger) -> None:
        ledger.created_at = ledger.created_at or time.time()
        self.journal.start_run(FINGERPRINT, ledger.to_json(), run_id=ledger.run_id)

    def save(self, ledger: Ledger) -> None:
        """One SQLite transaction: a kill leaves the previous ledger or this one, never half."""
        self.journal.update_run(ledger.run_id, ledger.to_json())

    def load(self, run_id: str) -> Ledger | None:
        run = self.journal.get_run(run_id)
        if run is None or run.fingerprint != FINGERPRINT:
            return None
        return Ledger.from_json(run.meta)

    def runs(self, limit: int = 50) -> list[Ledger]:
        rows = self.journal.list_runs(fingerprint=FINGERPRINT, limit=limit)
        return [Ledger.from_json(r.meta) for r in rows]
