"""``goal --apply``: the run's final diff (base commit -> branch head) into the working tree,
with the batch command's rule: every file is checked against what the run started from, then
written atomically; one file changed since then and nothing is written."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from lsp_agent.batch.apply import ApplyOutcome, apply_changes
from lsp_agent.goals import git
from lsp_agent.goals.ledger import Ledger


def final_changes(ledger: Ledger) -> tuple[list[dict[str, Any]], list[str]]:
    """The run's changes as FileChange-shaped dicts (paths relative to the root), and the
    problems that keep a file out (a deletion, a file that is not UTF-8 text)."""
    root = Path(ledger.root)
    repo, prefix = git.repo_of(root)
    head = git.git(repo, "rev-parse", ledger.branch).strip()
    changes: list[dict[str, Any]] = []
    problems: list[str] = []
    for path in git.changed_files(repo, ledger.base_commit, head):
        if prefix and not path.startswith(prefix + "/"):
            continue
        rel = path[len(prefix) + 1 :] if prefix else path
        old, new = git.file_at(repo, ledger.base_commit, path), git.file_at(repo, head, path)
        if new is None:
            problems.append(f"{rel}: deleted by the run; delete it yourself if you agree")
            continue
        try:
            old_text = "" if old is None else old.decode("utf-8")
            new_text = new.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{rel}: not UTF-8 text; take it from {ledger.branch}")
            continue
        changes.append(
            {
                "path": rel,
                "original_sha256": hashlib.sha256(old).hexdigest() if old is not None else "",
                "original_text": old_text,
                "new_text": new_text,
                "created": old is None,
            }
        )
    return changes, problems


def final_diff(ledger: Ledger) -> str:
    repo, prefix = git.repo_of(Path(ledger.root))
    args = ["diff", ledger.base_commit, ledger.branch]
    if prefix:
        args += ["--relative=" + prefix]
    return git.git(repo, *args)


def apply_run(ledger: Ledger) -> tuple[list[ApplyOutcome], list[str]]:
    changes, problems = final_changes(ledger)
    if problems:
        return [], problems
    return apply_changes(Path(ledger.root), changes), []
