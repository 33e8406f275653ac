"""lsp-agent through eglot in a real batch Emacs (Debian: Emacs 28.2 + elpa-eglot 1.9).

tests/editors/emacs/e2e.el opens calc.py, connects eglot to the real server, picks a code action
with eglot's own `eglot-code-actions` (completing-read answered by the test), and waits for the
edit the scripted model's task produces. editors/emacs/lsp-agent-eglot.el supplies the prompt
for actions that need an instruction.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.editors.conftest import REPO_ROOT, EditorCase

E2E_EL = REPO_ROOT / "tests" / "editors" / "emacs" / "e2e.el"
PLUGIN = REPO_ROOT / "editors" / "emacs"
EGLOT_DIRS = "/usr/share/emacs/site-lisp/elpa/eglot-*"


def require_emacs() -> str:
    emacs = shutil.which("emacs")
    if emacs is None or not list(Path("/").glob(EGLOT_DIRS.lstrip("/"))):
        pytest.skip("emacs or eglot missing: apt-get install -y emacs-nox elpa-eglot")
    return emacs


def run_emacs(case: EditorCase, *, action: str, instruction: str) -> dict[str, Any]:
    emacs = require_emacs()
    report_path = case.home / "report.json"
    env = dict(case.env)
    env.update(
        LSP_AGENT_E2E_CMD=json.dumps(case.server_cmd),
        LSP_AGENT_E2E_FILE=str(case.file),
        LSP_AGENT_E2E_EXPECT=str(case.expected),
        LSP_AGENT_E2E_ACTION=action,
        LSP_AGENT_E2E_INSTRUCTION=instruction,
        LSP_AGENT_E2E_REPORT=str(report_path),
        LSP_AGENT_E2E_TIMEOUT_MS="90000",
        LSP_AGENT_E2E_PLUGIN=str(PLUGIN),
    )
    proc = subprocess.run(
        [emacs, "--batch", "-Q", "-l", str(E2E_EL)],
        env=env,
        cwd=case.root,
        capture_output=True,
        text=True,
        timeout=180,
    )
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    assert proc.returncode == 0, (
        f"emacs exited {proc.returncode}\nstderr:\n{proc.stderr[-3000:]}\nreport: {report}"
    )
    return report


@pytest.mark.editor
@pytest.mark.slow
def test_preset_code_action_edits_the_buffer(editor_case: EditorCase) -> None:
    report = run_emacs(editor_case, action="Add type hints", instruction="")
    assert report["emacs"].startswith("2"), report["emacs"]
    assert "lsp-agent: Add type hints" in report["actions"]
    assert report["asked_instruction"] == []
    assert report["text"] == editor_case.expected.read_text()
    assert report["modified"] is True  # edited in the buffer, not on disk
    assert editor_case.file.read_text() != report["text"]
    assert [t["state"] for t in report["tasks"]] == ["applied"]


@pytest.mark.editor
@pytest.mark.slow
def test_instruction_prompt_for_rewrite_selection(editor_case: EditorCase) -> None:
    instruction = "Annotate add with int types"
    report = run_emacs(editor_case, action="Rewrite selection", instruction=instruction)
    assert report["asked_instruction"] == ["lsp-agent instruction: "]
    assert report["text"] == editor_case.expected.read_text()
    assert editor_case.instruction_seen(instruction)
    assert report["tasks"][0]["title"].startswith(instruction)
