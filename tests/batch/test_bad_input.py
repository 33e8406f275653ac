"""Every bad input of the batch commands: exit 2 and a message that says what is wrong, as a
real subprocess (argparse's own errors included), and never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.batch.conftest import REPO_ROOT, Run

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def cli(argv: list[str], cwd: Path, tmp_path: Path, **env: str) -> Run:
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_API_KEY") and not k.startswith("LSP_AGENT_")
    }
    full.update(
        PYTHONPATH=str(REPO_ROOT),
        LSP_AGENT_CACHE_DIR=str(tmp_path / "cache"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        **env,
    )
    proc = subprocess.run(
        [sys.executable, "-m", "lsp_agent", *argv],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def code(tmp_path: Path) -> Path:
    """Real code outside any git repository: a copy of the stdlib's json package."""
    root = tmp_path / "code"
    shutil.copytree(STDLIB / "json", root / "json", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--apply", "--json"], "argument --json: not allowed with argument --apply"),
        (["--diff", "--apply"], "argument --apply: not allowed with argument --diff"),
        (["--jobs", "99"], "--jobs/-j: must be between 1 and 32, got 99"),
        (["--jobs", "0"], "must be at least 1"),
        (["--provider", "nosuch"], "argument --provider: invalid choice: 'nosuch'"),
        (["--dry-run", "--apply"], "--dry-run writes nothing"),
        (["--task", "1"], "--task N picks the context --dry-run -v shows"),
        (["--root", "no/such/dir"], "--root no/such/dir: no such directory"),
        (["json", "missing.py"], "missing.py: no such file or directory"),
    ],
)
def test_refactor_usage_errors(code: Path, tmp_path: Path, argv: list[str], needle: str) -> None:
    run = cli(["refactor", "add type hints", *argv], code, tmp_path)
    assert run.code == 2
    assert needle in run.err
    assert run.out == ""


def test_paths_in_two_workspaces_name_both(code: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    run = cli(["refactor", "x", "--dry-run", "json", str(other)], code, tmp_path)
    assert run.code == 2
    assert "different workspaces" in run.err
    assert str(code / "json") in run.err and str(other) in run.err


def test_filesystem_root_and_home_are_refused_at_once(tmp_path: Path) -> None:
    home = tmp_path / "me"
    home.mkdir()
    for argv, cwd in ((["refactor", "x", "--dry-run"], Path("/")), (["refactor", "x", "."], home)):
        run = cli(argv, cwd, tmp_path, HOME=str(home))
        assert run.code == 2, run.err
        assert "will not index" in run.err and "--root DIR" in run.err
        assert "indexed" not in run.err  # refused before any walking


def test_tree_past_the_file_cap_is_refused(code: Path, tmp_path: Path) -> None:
    (code / ".lsp-agent.toml").write_text("[index]\nmax_files = 5\n")
    run = cli(["refactor", "x", "--dry-run"], code, tmp_path)
    assert run.code == 2
    assert "holds more than 5 files" in run.err and "index.max_files" in run.err


def test_tasks_root_missing_exits_2(code: Path, tmp_path: Path) -> None:
    run = cli(["tasks", "--root", "nowhere"], code, tmp_path)
    assert run.code == 2 and "--root nowhere: no such directory" in run.err


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (bytes(range(256)) * 4, "not UTF-8 text"),
        (b"[model\n", "not valid TOML"),
    ],
)
def test_bad_config_file_exits_2_naming_it(
    code: Path, tmp_path: Path, content: bytes, needle: str
) -> None:
    (code / ".lsp-agent.toml").write_bytes(content)
    run = cli(["refactor", "x", "--dry-run"], code, tmp_path)
    assert run.code == 2
    assert needle in run.err and str(code / ".lsp-agent.toml") in run.err
    assert "no model configured" not in run.err


def test_unknown_provider_is_named_not_no_model_configured(code: Path, tmp_path: Path) -> None:
    user = tmp_path / "config" / "lsp-agent" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[model]\nprovider = "nosuch"\n')
    for argv in (["--dry-run"], []):
        run = cli(["refactor", "x", *argv], code, tmp_path)
        assert run.code == 2
        assert f"{user}: provider 'nosuch' does not exist" in run.err
        assert "no model configured" not in run.err
    user.unlink()
    env_run = cli(["refactor", "x"], code, tmp_path, LSP_AGENT_PROVIDER="nosuch")
    assert env_run.code == 2 and "LSP_AGENT_PROVIDER" in env_run.err


def test_utf16_config_and_diagnostics_are_read(code: Path, tmp_path: Path) -> None:
    (code / ".lsp-agent.toml").write_bytes("[budgets]\r\nmax_steps = 5\r\n".encode("utf-16"))
    decoder = code / "json" / "decoder.py"
    ruff = [
        {
            "code": "F401",
            "message": "`re` imported but unused",
            "filename": str(decoder),
            "location": {"row": 3, "column": 1},
            "end_location": {"row": 3, "column": 10},
        }
    ]
    (code / "diags.json").write_bytes(json.dumps(ruff).encode("utf-16"))  # PowerShell's `>`
    run = cli(["fix", "-d", "diags.json", "--dry-run"], code, tmp_path)
    assert run.code == 0, run.err
    assert "json/decoder.py" in run.out
    (code / "diags.json").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    bad = cli(["fix", "-d", "diags.json", "--dry-run"], code, tmp_path)
    assert bad.code == 2
    assert "--diagnostics diags.json: not UTF-8 text" in bad.err


def test_empty_files_get_no_task(code: Path, tmp_path: Path) -> None:
    (code / "json" / "empty.py").write_text("")
    (code / "json" / "blank.py").write_text("\n\n   \n")
    run = cli(["refactor", "x", "--dry-run", "--json", "--split", "file"], code, tmp_path)
    assert run.code == 0, run.err
    report = json.loads(run.out)
    files = [f for t in report["tasks"] for f in t["files"]]
    assert "json/decoder.py" in files
    assert "json/empty.py" not in files and "json/blank.py" not in files
    assert "2 empty file(s) get no task" in run.err
