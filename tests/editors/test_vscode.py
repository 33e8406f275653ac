"""The VS Code extension in real VS Code: code-server 4.100.3 + headless Debian Chromium.

editors/vscode/e2e/run.mjs does the driving (playwright-core): it installs the freshly built
.vsix, opens calc.py, selects a line, picks "lsp-agent: Rewrite selection…" from the code action
menu, types the instruction into the prompt the extension shows, and waits for the text that
the scripted model's task produces; then does the same on other.py through the palette command
"LSP Agent: Run Instruction on Selection"; first it stores an API key with "LSP Agent: Set
API Key" and checks the restarted server's environment. Nothing publishes diagnostics in a bare
code-server, so the test uses the server's refactor action on a selection, not a quick fix.
Last, a task on slow.py whose coder the model answers only after 8 s: the status bar must count
it and show its progress, "LSP Agent: Cancel Task" must stop it, and once the model's delay has
passed the document must be unchanged and "Show Tasks" list it as cancelled. The run saves
vscode-e2e-progress.png, vscode-e2e-cancel-pick.png and vscode-e2e-report.json in tmp_path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.editors.conftest import CALC, REPO_ROOT, EditorCase

EXTENSION = REPO_ROOT / "editors" / "vscode"
CODE_SERVER = Path(
    os.environ.get(
        "LSP_AGENT_CODE_SERVER",
        REPO_ROOT / "editors/.tools/code-server/node_modules/code-server/out/node/entry.js",
    )
)
CHROMIUM = os.environ.get("LSP_AGENT_CHROMIUM", "/usr/bin/chromium")
INSTALL_HINT = "run scripts/install-editors.sh (apt chromium, npm ci, code-server 4.100.3)"


def require_tools() -> None:
    missing = [
        what
        for what, ok in (
            ("node", shutil.which("node") is not None),
            (f"chromium at {CHROMIUM}", Path(CHROMIUM).exists()),
            (f"code-server at {CODE_SERVER}", CODE_SERVER.exists()),
            ("editors/vscode/node_modules", (EXTENSION / "node_modules" / ".bin").is_dir()),
        )
        if not ok
    ]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: {INSTALL_HINT}")


def build_vsix(out: Path) -> Path:
    """Compile and package exactly what a user would install."""
    vsix = out / "lsp-agent.vsix"
    vsce = EXTENSION / "node_modules" / ".bin" / "vsce"
    subprocess.run(
        [str(vsce), "package", "--allow-missing-repository", "-o", str(vsix)],
        cwd=EXTENSION,
        check=True,
        capture_output=True,
        timeout=180,
    )
    return vsix


API_KEY = "sk-e2e-0123456789"
OTHER = "def mul(a, b):\n    return a * b\n"
OTHER_FIXED = "def mul(a: float, b: float) -> float:\n    return a * b\n"


def add_other_file_rules(case: EditorCase) -> None:
    """A second task on other.py, ahead of the fixture's calc.py rules (first match wins)."""
    case.model.add_rule(
        {
            "match": {"contains": "# Target file: other.py"},
            "reply": {
                "content": "other.py\n<<<<<<< SEARCH\ndef mul(a, b):\n=======\n"
                "def mul(a: float, b: float) -> float:\n>>>>>>> REPLACE\n"
            },
        },
        first=True,
    )
    case.model.add_rule(
        {
            "match": {"has_tool": "submit_plan", "contains": "Files: other.py"},
            "reply": {
                "tool_calls": [
                    {
                        "name": "submit_plan",
                        "arguments": {
                            "targets": [{"path": "other.py", "instructions": "Annotate mul."}],
                            "notes": "one file",
                        },
                    }
                ]
            },
        },
        first=True,
    )


SLOW = "def sub(a, b):\n    return a - b\n"
SLOW_DELAY_MS = 8000


def add_slow_file_rules(case: EditorCase) -> None:
    """A task on slow.py whose coder the model answers only after SLOW_DELAY_MS: time to cancel."""
    case.model.add_rule(
        {
            "match": {"contains": "# Target file: slow.py"},
            "delay_ms": SLOW_DELAY_MS,
            "reply": {
                "content": "slow.py\n<<<<<<< SEARCH\ndef sub(a, b):\n=======\n"
                "def sub(a: int, b: int) -> int:\n>>>>>>> REPLACE\n"
            },
        },
        first=True,
    )
    case.model.add_rule(
        {
            "match": {"has_tool": "submit_plan", "contains": "Files: slow.py"},
            "reply": {
                "tool_calls": [
                    {
                        "name": "submit_plan",
                        "arguments": {
                            "targets": [{"path": "slow.py", "instructions": "Annotate sub."}],
                            "notes": "one file",
                        },
                    }
                ]
            },
        },
        first=True,
    )


@pytest.mark.editor
@pytest.mark.slow
def test_code_action_and_run_instruction_command_edit_documents(
    editor_case: EditorCase, tmp_path: Path
) -> None:
    require_tools()
    vsix = build_vsix(tmp_path)
    (editor_case.root / "other.py").write_text(OTHER)
    other_expected = tmp_path / "other_expected.py"
    other_expected.write_text(OTHER_FIXED)
    add_other_file_rules(editor_case)
    (editor_case.root / "slow.py").write_text(SLOW)
    add_slow_file_rules(editor_case)
    cancel_instruction = "Annotate sub with int types"
    action_instruction = "Annotate add with int types"
    command_instruction = "Annotate mul with float types"
    config = {
        "codeServer": str(CODE_SERVER),
        "chromium": CHROMIUM,
        "vsix": str(vsix),
        "workspace": str(editor_case.root),
        "serverCommand": editor_case.server_cmd,
        "timeoutMs": 90_000,
        "artifacts": str(tmp_path),
        "apiKey": API_KEY,
        "scenarios": [
            {
                "file": "calc.py",
                "expect": str(editor_case.expected),
                "via": "codeAction",
                "action": "Rewrite selection",
                "instruction": action_instruction,
                "selectLine": 1,
            },
            {
                "file": "other.py",
                "expect": str(other_expected),
                "via": "command",
                "instruction": command_instruction,
                "selectLine": 1,
            },
        ],
        "cancel": {
            "file": "slow.py",
            "action": "Rewrite selection",
            "instruction": cancel_instruction,
            "selectLine": 1,
            "delayMs": SLOW_DELAY_MS,
            "progressText": "coding file 1 of 1",
        },
    }
    config_path = tmp_path / "e2e.json"
    config_path.write_text(json.dumps(config))
    proc = subprocess.run(
        ["node", str(EXTENSION / "e2e" / "run.mjs"), "--config", str(config_path)],
        env=editor_case.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines else {}
    assert proc.returncode == 0, (
        f"e2e failed (screenshot in {tmp_path}):\n{report.get('error')}\n"
        f"steps: {report.get('steps')}\nscenarios: {report.get('scenarios')}\n"
        f"code-server log:\n{report.get('codeServerLog')}\nstderr:\n{proc.stderr[-3000:]}"
    )
    by_code_action, by_command = report["scenarios"]
    assert by_code_action["text"] == editor_case.expected.read_text()
    assert by_command["text"] == OTHER_FIXED
    # The documents changed in the editor (workspace/applyEdit), not on disk behind its back.
    assert editor_case.file.read_text() != by_code_action["text"]
    assert (editor_case.root / "other.py").read_text() == OTHER
    assert "lsp-agent: Rewrite selection…" in by_code_action["menu"], by_code_action["menu"]
    # Both typed instructions reached the model: the middleware and the palette command work.
    assert editor_case.instruction_seen(action_instruction)
    assert editor_case.instruction_seen(command_instruction)
    assert editor_case.instruction_seen("Selection: other.py lines 1-1")
    picked = " ".join(report["tasksPick"])
    assert action_instruction in picked and command_instruction in picked, report["tasksPick"]
    assert "LSP Agent" in report["statusBar"]
    # "Cancel Task": while the model sat on the coder's request, the status bar counted the task
    # and the window progress showed its step; the pick offered it, and after the cancel the
    # status bar went idle and, past the model's delay, the document was still untouched.
    cancel = report["cancel"]
    assert cancel["running"] == "LSP Agent: 1 task", cancel
    assert "coding file 1 of 1" in cancel["progress"], cancel
    assert len(cancel["pick"]) == 1 and cancel_instruction in cancel["pick"][0], cancel["pick"]
    assert "running" in cancel["pick"][0], cancel["pick"]
    assert cancel["message"].startswith(f'LSP Agent: cancelled "{cancel_instruction}'), cancel
    assert cancel["idle"] == "LSP Agent", cancel
    assert not any("coding file" in item for item in cancel["statusAfter"]), cancel
    assert cancel["text"] == SLOW and cancel["unchanged"], cancel
    assert (editor_case.root / "slow.py").read_text() == SLOW
    assert editor_case.instruction_seen("# Target file: slow.py")
    cancelled = [row for row in report["tasksPick"] if cancel_instruction in row]
    assert len(cancelled) == 1 and "cancelled" in cancelled[0], report["tasksPick"]
    # "Show Context": the manifest of the active file's snapshot, as a Markdown table.
    assert "budget" in report["context"] and "| full |" in report["context"], report["context"]
    assert "other.py" in report["context"], report["context"]
    # "Set API Key": the key went to SecretStorage and the restarted server's environment only
    # (the tasks above ran on that restarted server).
    assert report["apiKey"] == {"restarted": True, "oldServerGone": True, "inSettings": False}


@pytest.mark.editor
@pytest.mark.slow
def test_goal_run_from_the_palette_lands_as_one_edit(
    goal_case: EditorCase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "Run a Goal…" with calc.py open starts a two-step run on its own branch; the window
    progress names each step; "Apply a Goal Run…" brings the final diff into the document."""
    require_tools()
    vsix = build_vsix(tmp_path)
    goal_case.model.latency_ms = 1000  # each step lasts seconds: the status bar is polled
    goal = "Grow calc in two steps"
    config = {
        "codeServer": str(CODE_SERVER),
        "chromium": CHROMIUM,
        "vsix": str(vsix),
        "workspace": str(goal_case.root),
        "serverCommand": goal_case.server_cmd,
        "timeoutMs": 120_000,
        "artifacts": str(tmp_path),
        "scenarios": [],
        "goal": {"file": "calc.py", "goal": goal, "expect": str(goal_case.expected)},
    }
    config_path = tmp_path / "e2e.json"
    config_path.write_text(json.dumps(config))
    proc = subprocess.run(
        ["node", str(EXTENSION / "e2e" / "run.mjs"), "--config", str(config_path)],
        env=goal_case.env,
        capture_output=True,
        text=True,
        timeout=360,
    )
    lines = proc.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines else {}
    assert proc.returncode == 0, (
        f"e2e failed (screenshot in {tmp_path}):\n{report.get('error')}\n"
        f"steps: {report.get('steps')}\ngoal: {report.get('goal')}\n"
        f"code-server log:\n{report.get('codeServerLog')}\nstderr:\n{proc.stderr[-3000:]}"
    )
    seen = report["goal"]
    assert any("step s1 (1/2)" in item for item in seen["progress"]), seen
    assert any("step s2 (2/2)" in item for item in seen["progress"]), seen
    assert "succeeded" in seen["message"], seen
    assert seen["textBefore"] == CALC and seen["textBeforeApply"] == CALC, seen
    assert seen["text"] == goal_case.expected.read_text()
    assert any(goal in row for row in seen["pick"]), seen["pick"]
    assert goal_case.file.read_text() == CALC, "the edit went to the document, not the disk"
    assert goal_case.instruction_seen(goal)
    # One applyEdit, accepted: the run's one apply task, journaled as applied.
    from lsp_agent.config import workspace_cache_dir
    from lsp_agent.tasks import TaskJournal

    monkeypatch.setenv("LSP_AGENT_CACHE_DIR", goal_case.env["LSP_AGENT_CACHE_DIR"])
    journal = TaskJournal(workspace_cache_dir(goal_case.root) / "tasks.sqlite")
    try:
        applies = [t for t in journal.list() if t.run_id and t.key == "apply"]
    finally:
        journal.close()
    assert [t.state for t in applies] == ["applied"], applies
