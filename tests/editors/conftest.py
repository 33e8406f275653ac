"""Shared pieces of the real-editor tests: a workspace, the scripted model, the server command.

The editors start the real `lsp-agent serve` themselves (as their child process), and the server
talks to the scripted model over HTTP on 127.0.0.1. Each test gets its own workspace, cache,
HOME and XDG directories so no editor reads the developer's configuration.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.scripted_model import ScriptedModel

REPO_ROOT = Path(__file__).resolve().parents[2]
NVIM_PLUGIN = REPO_ROOT / "editors" / "nvim"

CALC = "def add(a, b):\n    return a + b\n\n\ndef twice(x):\n    return add(x, x)\n"
CALC_FIXED = (
    "def add(a: int, b: int) -> int:\n    return a + b\n\n\ndef twice(x):\n    return add(x, x)\n"
)
# A diagnostic as a type checker would report it on line 1 (0-based 0).
DIAGNOSTIC: dict[str, Any] = {
    "range": {"start": {"line": 0, "character": 4}, "end": {"line": 0, "character": 7}},
    "severity": 2,
    "source": "mypy",
    "code": "no-untyped-def",
    "message": "Function is missing a type annotation",
}
SERVER_VARS = (
    "LSP_AGENT_BASE_URL",
    "LSP_AGENT_API_KEY",
    "LSP_AGENT_MODEL",
    "LSP_AGENT_PROVIDER",
    "DEEPSEEK_API_KEY",
    "MOONSHOT_API_KEY",
    "OPENAI_API_KEY",
)


def task_rules(path: str, search: str, replace: str) -> list[dict[str, Any]]:
    """A full task in the worker's protocol (docs/protocol.md): plan, one coder, approval."""
    block = f"{path}\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"
    return [
        {
            "match": {"has_tool": "submit_plan"},
            "reply": {
                "tool_calls": [
                    {
                        "name": "submit_plan",
                        "arguments": {
                            "targets": [{"path": path, "instructions": "Annotate add."}],
                            "notes": "Only add needs hints.",
                        },
                    }
                ]
            },
        },
        {"match": {"contains": f"# Target file: {path}"}, "reply": {"content": block}},
        {
            "match": {"has_tool": "submit_review"},
            "reply": {
                "tool_calls": [
                    {"name": "submit_review", "arguments": {"approved": True, "findings": []}}
                ]
            },
        },
    ]


@dataclass
class EditorCase:
    """Everything one editor run needs: where things are and what the edit must produce."""

    root: Path  # the workspace
    file: Path  # the file the editor opens
    expected: Path  # a file holding the text expected after the task lands
    home: Path  # HOME / XDG for the editor
    env: dict[str, str]  # the editor's environment (the server inherits it)
    model: ScriptedModel
    server_cmd: list[str]

    def instruction_seen(self, text: str) -> bool:
        """Whether any request to the model carried ``text`` (e.g. a typed instruction)."""
        return any(text in json.dumps(r.body) for r in self.model.requests)


def server_command() -> list[str]:
    """The server as an editor would start it: the installed console script, else -m."""
    script = Path(sys.executable).with_name("lsp-agent")
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "lsp_agent", "serve"]


def _case(tmp_path: Path, model: ScriptedModel) -> EditorCase:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "calc"\n')
    file = root / "calc.py"
    file.write_text(CALC)
    expected = tmp_path / "expected.py"
    expected.write_text(CALC_FIXED)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in SERVER_VARS}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        XDG_CACHE_HOME=str(home / ".cache"),
        LSP_AGENT_CACHE_DIR=str(tmp_path / "cache"),
        LSP_AGENT_BASE_URL=model.url,
        LSP_AGENT_MODEL="scripted-model",
    )
    return EditorCase(root, file, expected, home, env, model, server_command())


@pytest.fixture
def editor_case(tmp_path: Path) -> Iterator[EditorCase]:
    rules = task_rules("calc.py", "def add(a, b):", "def add(a: int, b: int) -> int:")
    with ScriptedModel(rules) as model:
        yield _case(tmp_path, model)


GOAL_STEPS = 2
GOAL_EXPECTED = CALC + "".join(f"STEP_s{n} = {n}\n" for n in range(1, GOAL_STEPS + 1))


@pytest.fixture
def goal_case(tmp_path: Path) -> Iterator[EditorCase]:
    """A git workspace and a model that plays a goal run of two steps, each appending a line
    to calc.py (tests/goals/support.py's GoalModel); ``expected`` is calc.py after the run."""
    from tests.goals.support import GoalModel, chain, run_git

    hook = GoalModel(chain(GOAL_STEPS, files=lambda n: "calc.py"))
    with ScriptedModel(hook=hook) as model:
        case = _case(tmp_path, model)
        case.expected.write_text(GOAL_EXPECTED)
        run_git(case.root, "init", "-q", "-b", "main")
        run_git(case.root, "add", "-A")
        run_git(case.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
        yield case
