"""A scripted-model hook that plays every role of any batch task, following docs/protocol.md.

The researcher plans one target per file named in the task's ``Files:`` line; each coder adds a
header comment as the file's first line (a SEARCH on the current first line, read from disk the
way the task's index read it); the reviewer approves. ``fail`` names files whose coder request
gets an HTTP 500 (with ``max_retries = 0`` the task fails at once); ``on_review`` runs when a
reviewer request arrives — after the task read its files and before anything is applied.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

FIXTURE_REPO = Path(__file__).resolve().parent.parent / "fixtures" / "batch" / "repo"


def copy_repo(dest: Path) -> Path:
    shutil.copytree(FIXTURE_REPO, dest)
    return dest


def header_for(path: str) -> str:
    if path.endswith(".js"):
        return f"// Reviewed by lsp-agent: {path}"
    return f'"""Reviewed by lsp-agent: {path}."""'


def role_of(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    if len(messages) < 3:
        return ""
    first = str(messages[2].get("content") or "").splitlines()[:2]
    return first[0].removeprefix("# Role: ").strip() if first else ""


def target_of(body: dict[str, Any]) -> str:
    second = str(body["messages"][2]["content"]).splitlines()[1]
    return second.removeprefix("# Target file: ").strip()


def task_files(body: dict[str, Any]) -> list[str]:
    for line in str(body["messages"][2]["content"]).splitlines():
        if line.startswith("Files: "):
            return [p.strip() for p in line.removeprefix("Files: ").split(",")]
    return []


class BatchModel:
    def __init__(
        self,
        root: Path,
        *,
        fail: Iterable[str] = (),
        on_review: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.root = root
        self.fail = set(fail)
        self.on_review = on_review
        self.lock = threading.Lock()
        self.roles: list[str] = []

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        role = role_of(body)
        with self.lock:
            self.roles.append(role)
        if role == "researcher":
            targets = [
                {"path": p, "instructions": "Add the review header as the first line."}
                for p in task_files(body)
            ]
            args = {"targets": targets, "notes": "one header per file"}
            return {"tool_calls": [{"name": "submit_plan", "arguments": args}]}
        if role == "coder":
            path = target_of(body)
            if path in self.fail:
                return {"fault": {"kind": "status", "status": 500}}
            first = (self.root / path).read_text(encoding="utf-8").splitlines()[0]
            block = f"{path}\n<<<<<<< SEARCH\n{first}\n=======\n{header_for(path)}\n{first}\n"
            return {"content": block + ">>>>>>> REPLACE\n"}
        if role == "reviewer":
            if self.on_review is not None:
                self.on_review(task_files(body))
            args = {"approved": True, "findings": []}
            return {"tool_calls": [{"name": "submit_review", "arguments": args}]}
        return None
