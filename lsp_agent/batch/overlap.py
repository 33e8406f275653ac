"""Two tasks of one run that changed the same file: the later change is restated against the
text the earlier one left (the same rebase the server does for a user's typing), or refused as
overlapping. Without this, ``--diff`` printed two diffs of one original that do not apply one
after the other, and ``--apply`` refused the second task's file as "changed underneath"."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any


class Overlap(Exception):
    """A change that cannot be rebased onto an earlier task's change of the same file."""


class RunFiles:
    """Each file's (original, latest text, task id) as this run's earlier tasks left it.
    Thread-safe: ``--apply`` settles tasks from worker threads as they finish."""

    def __init__(self) -> None:
        self._texts: dict[str, tuple[str, str, str]] = {}
        self.lock = threading.RLock()  # held around settle + write + record when applying

    def settle(self, task_id: str, changes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The task's changes restated against what earlier tasks of the run made of the same
        files (``original_text`` becomes that text); Overlap when one does not rebase."""
        from lsp_agent.edits import rebase_change

        settled = []
        with self.lock:
            for change in changes:
                path = str(change["path"])
                earlier = self._texts.get(path)
                if earlier is None:
                    settled.append(dict(change))
                    continue
                _, latest, other = earlier
                new = rebase_change(
                    str(change.get("original_text") or ""),
                    str(change["new_text"]),
                    latest,
                    change.get("blocks") or [],
                )
                if new is None:
                    raise Overlap(f"{path}: overlaps the change task {other} made to it")
                settled.append(
                    {
                        **change,
                        "original_text": latest,
                        "original_sha256": hashlib.sha256(latest.encode("utf-8")).hexdigest(),
                        "new_text": new,
                    }
                )
        return settled

    def record(self, task_id: str, changes: Sequence[Mapping[str, Any]]) -> None:
        with self.lock:
            for change in changes:
                path = str(change["path"])
                original = self._texts.get(path, (str(change.get("original_text") or ""),))[0]
                self._texts[path] = (original, str(change["new_text"]), task_id)

    def combined(self) -> list[tuple[str, str, str]]:
        """(path, original, final text) per file, in the order the files were first changed."""
        with self.lock:
            return [(path, first, latest) for path, (first, latest, _) in self._texts.items()]
