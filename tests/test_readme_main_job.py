"""README's main job, exactly as README writes it: from a fresh clone, on real code elsewhere.

The command is read out of README.md (the first ``sh`` block after "**Run the main job**"), so
README and this test cannot drift apart; only ``PATH/TO/YOUR/CODE`` is replaced, by a slice of
the standard library copied to a folder outside the clone. No model is configured, as for a new
user: the dry run must exit 0 with a plan.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
STDLIB = Path(sysconfig.get_paths()["stdlib"])
PLACEHOLDER = "PATH/TO/YOUR/CODE"


def main_job_command(readme: str) -> str:
    after = readme.split("**Run the main job**", 1)[1]
    block = re.search(r"```sh\n(.*?)```", after, re.S)
    assert block is not None, "README: no sh block after **Run the main job**"
    command = block.group(1).strip()
    assert "\n" not in command and PLACEHOLDER in command and "lsp-agent refactor" in command
    return command


def test_readme_names_the_main_job_in_one_line() -> None:
    command = main_job_command((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    assert command.startswith("python3 -m venv .venv")
    assert "--dry-run" in command


def test_every_package_is_installed() -> None:
    """`pip install .` installs the listed packages only: a new subpackage left out of
    pyproject.toml works in the editable checkout and breaks every real install."""
    listed = set(
        tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(REPO_ROOT).parts)
        for p in (REPO_ROOT / "lsp_agent").rglob("__init__.py")
    }
    assert found - listed == set()


@pytest.mark.slow
def test_main_job_from_a_fresh_clone_on_code_outside_it(tmp_path: Path) -> None:
    clone = tmp_path / "lsp-agent"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    code = tmp_path / "their-project"
    for package in ("json", "tomllib", "email/mime"):
        shutil.copytree(
            STDLIB / package, code / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    command = main_job_command((clone / "README.md").read_text(encoding="utf-8"))
    command = command.replace(PLACEHOLDER, str(code))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_API_KEY") and not k.startswith(("LSP_AGENT_", "VIRTUAL_ENV"))
    }
    home = tmp_path / "home"
    home.mkdir()
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    env.pop("XDG_CACHE_HOME", None)
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    # stdout holds pip's output, then lsp-agent's, whose first line is the root
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Successfully installed"))
    assert lines[start + 1].startswith(f"workspace root {code} ("), proc.stdout[-3000:]
    assert lines[start + 2].startswith("dry run: refactor ")
    assert "Traceback" not in proc.stderr
    files = len([p for p in code.rglob("*.py") if p.stat().st_size > 0])
    assert f"files: {files}; tasks: " in proc.stdout
    assert "model: no model configured: set DEEPSEEK_API_KEY" in proc.stdout
    assert re.search(r"^total: ~[\d,]+ prompt tokens in \d+ requests", proc.stdout, re.M)
    assert re.search(r"^cost at deepseek: \$[\d.]+-\$[\d.]+", proc.stdout, re.M)
    # the user's code was only read
    assert not (code / ".lsp-agent").exists()
