"""The VS Code extension in real VS Code: code-server 4.100.3 + headless Debian Chromium.

editors/vscode/e2e/run.mjs does the driving (playwright-core): it installs the freshly built
.vsix, opens calc.py, selects a line, picks "lsp-agent: Rewrite selection…" from the code action
menu, types the instruction into the prompt the extension shows, and waits for the text that
the scripted model's task produces. Nothing publishes diagnostics in a bare code-server, so the
test uses the server's refactor action on a selection instead of a quick fix.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.editors.conftest import REPO_ROOT, EditorCase

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


@pytest.mark.editor
@pytest.mark.slow
def test_code_action_with_prompted_instruction_edits_the_document(
    editor_case: EditorCase, tmp_path: Path
) -> None:
    require_tools()
    vsix = build_vsix(tmp_path)
    instruction = "Annotate add with int types"
    config = {
        "codeServer": str(CODE_SERVER),
        "chromium": CHROMIUM,
        "vsix": str(vsix),
        "workspace": str(editor_case.root),
        "file": "calc.py",
        "expect": str(editor_case.expected),
        "action": "Rewrite selection",
        "instruction": instruction,
        "selectLine": 1,
        "serverCommand": editor_case.server_cmd,
        "timeoutMs": 90_000,
        "artifacts": str(tmp_path),
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
        f"steps: {report.get('steps')}\nmenu: {report.get('menu')}\n"
        f"code-server log:\n{report.get('codeServerLog')}\nstderr:\n{proc.stderr[-3000:]}"
    )
    assert report["text"] == editor_case.expected.read_text()
    # The document changed in the editor (workspace/applyEdit), not on disk behind its back.
    assert editor_case.file.read_text() != report["text"]
    assert "lsp-agent: Rewrite selection…" in report["menu"], report["menu"]
    assert editor_case.instruction_seen(instruction), (
        "the typed instruction never reached the model"
    )
    assert any(instruction in row for row in report["tasksPick"]), report["tasksPick"]
    assert "LSP Agent" in report["statusBar"]
