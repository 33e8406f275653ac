"""A scripted-model hook that plays every role of a goal run (docs/protocol.md's layout).

The planner answers with ``plan`` (a list of step dicts); after a failure it answers with
``revise(failed_key)``. Each step's researcher plans one target per file of the step; its notes
(which become the step's summary) say ``wrote <file> for <key>``. Coders append the line
``STEP_<key> = <n>`` to their file with an empty SEARCH (create or append). Reviewers approve,
except for steps in ``reject``. ``storm_at`` starts a provider 5xx storm of ``storm_size``
requests when the first coder request of that step arrives. Every request body is kept by the
ScriptedModel, so tests check what each step was actually sent.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

STEP = re.compile(r"Instruction: Goal step (\S+):")


def role_of(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    if len(messages) < 3:
        return ""
    first = str(messages[2].get("content") or "").split("\n", 1)[0]
    return first.removeprefix("# Role: ").strip()


def task_of(body: dict[str, Any]) -> str:
    return str(body["messages"][2]["content"])


def step_of(body: dict[str, Any]) -> str:
    found = STEP.search(task_of(body))
    return found.group(1) if found else ""


def last_line(coder_message: str, path: str, snapshot: str = "") -> str | None:
    """The last line of the file as the coder is shown it; None for a new/empty file. When the
    coder message refers to the snapshot's copy, that `=== path ===` block is read instead."""
    section = coder_message.split(f"# Current content of {path}\n\n", 1)[1]
    if section.startswith("(the file is empty"):
        return None
    if section.startswith(f"The current text of {path} is the `=== {path} ===` block"):
        for text in (snapshot, coder_message):
            if f"\n=== {path} ===\n" in text:
                body = text.split(f"\n=== {path} ===\n", 1)[1].split("\n\n=== ", 1)[0]
                lines = body.rstrip("\n").splitlines()
                return lines[-1] if lines else None
        raise AssertionError(f"no block for {path} in the request")
    fence, _, rest = section.partition("\n")
    lines = rest.split("\n" + fence, 1)[0].splitlines()
    return lines[-1] if lines else None


def chain(count: int, *, files: Callable[[int], str] | None = None) -> list[dict[str, Any]]:
    """``count`` steps, each depending on the one before, each writing its own file."""
    steps = []
    for n in range(1, count + 1):
        path = files(n) if files else f"pkg/step_{n:02d}.py"
        steps.append(
            {
                "key": f"s{n}",
                "title": f"Add step {n}",
                "instructions": f"Write STEP_s{n} into {path}.",
                "files": [path],
                "depends_on": [f"s{n - 1}"] if n > 1 else [],
                "acceptance": {"kind": "criterion", "value": f"{path} defines STEP_s{n}"},
            }
        )
    return steps


class GoalModel:
    def __init__(
        self,
        plan: list[dict[str, Any]],
        *,
        revise: Callable[[str], list[dict[str, Any]]] | None = None,
        reject: set[str] | None = None,
        storm_at: str | None = None,
        storm_size: int = 0,
        on_coder: Callable[[str], None] | None = None,
        extra_targets: dict[str, list[str]] | None = None,
        coder_delay_ms: dict[str, int] | None = None,
        reject_message: str = "",
    ) -> None:
        self.reject_message = reject_message
        self.extra_targets = extra_targets or {}
        self.coder_delay_ms = coder_delay_ms or {}
        self.plan, self.revise, self.reject = plan, revise, set(reject or ())
        self.storm_at, self.storm_size, self.storm_left = storm_at, storm_size, 0
        self.on_coder = on_coder
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []  # (role, step key) per answered request
        self.faults = 0

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        role, key = role_of(body), step_of(body)
        with self.lock:
            if role == "coder" and key == self.storm_at and self.storm_size:
                self.storm_left, self.storm_size = self.storm_size, 0
            if self.storm_left > 0:
                self.storm_left -= 1
                self.faults += 1
                return {"fault": {"kind": "status", "status": 503, "message": "overloaded"}}
            self.calls.append((role, key))
        if role == "planner":
            text = task_of(body)
            if "# Plan revision" in text and self.revise is not None:
                failed = re.search(r"Step (\S+) \(", text.split("# Failure report", 1)[1])
                steps = self.revise(failed.group(1) if failed else "")
            else:
                steps = self.plan
            args = {"steps": steps, "notes": "one file per step"}
            return {"tool_calls": [{"name": "submit_goal_plan", "arguments": args}]}
        if role == "researcher":
            files = []
            for line in task_of(body).splitlines():
                if line.startswith("Files: "):
                    files = [p.strip() for p in line.removeprefix("Files: ").split(",")]
                    break
            files += [p for p in self.extra_targets.get(key, []) if p not in files]
            # Steps create their files: a plan flags a file that may not exist yet as new (an
            # existing file flagged new is simply edited).
            targets = [
                {"path": p, "instructions": f"append STEP_{key}", "new": True} for p in files
            ]
            args = {"targets": targets, "notes": f"wrote {', '.join(files)} for {key}"}
            return {"tool_calls": [{"name": "submit_plan", "arguments": args}]}
        if role == "coder":
            path = task_of(body).split("\n", 2)[1].removeprefix("# Target file: ").strip()
            if self.on_coder is not None:
                self.on_coder(key)
            number = re.sub(r"\D", "", key) or "0"
            line = f"STEP_{key} = {number}\n"
            last = last_line(task_of(body), path, str(body["messages"][1]["content"]))
            # Append: SEARCH the current last line (an empty SEARCH only creates a file).
            search = f"{last}\n" if last is not None else ""
            block = f"{path}\n<<<<<<< SEARCH\n{search}=======\n{search}{line}>>>>>>> REPLACE\n"
            return {"reply": {"content": block}, "delay_ms": self.coder_delay_ms.get(key, 0)}
        if role == "reviewer":
            if key in self.reject:
                message = self.reject_message or f"acceptance check of {key} fails"
                findings = [{"path": "", "message": message}]
                args = {"approved": False, "findings": findings}
            else:
                args = {"approved": True, "findings": []}
            return {"tool_calls": [{"name": "submit_review", "arguments": args}]}
        return None


def make_repo(root: Path) -> Path:
    """A small git repository with one commit and one uncommitted change."""
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text('"""A package the goal grows."""\n')
    (root / "pkg" / "core.py").write_text("def core():\n    return 1\n")
    (root / ".gitignore").write_text("*.log\n")
    run_git(root, "init", "-q", "-b", "main")
    run_git(root, "add", "-A")
    run_git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    (root / "pkg" / "core.py").write_text("def core():\n    return 2  # uncommitted\n")
    return root


def run_git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


def write_user_config(config_home: Path, text: str) -> None:
    folder = config_home / "lsp-agent"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(text)


FAST = """
[model]
max_retries = 1
[budgets]
review_rounds = 0
[goals]
outage_backoff_s = 0.05
"""
