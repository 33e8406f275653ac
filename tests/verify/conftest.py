"""A small real Python project for the verification tests: git, a .venv, pytest and ruff.

The project's ``.venv`` is a real virtual environment (``python -m venv --without-pip``) whose
site-packages point at this test run's own (a ``.pth`` file), so pytest and ruff are the real
ones, installed nowhere new. ``tests/test_calc.py::test_known_bug`` fails before any edit.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

CALC = '''"""Arithmetic for the fixture project."""


def add(a: int, b: int) -> int:
    return a + b


def mul(a: int, b: int) -> int:
    return a * b
'''

TESTS = """from calc import add, mul


def test_add():
    assert add(2, 3) == 5


def test_mul():
    assert mul(3, 4) == 12


def test_known_bug():
    assert mul(2, 2) == 5, "this test fails before any edit"
"""

PYPROJECT = """[project]
name = "calc"
version = "0"

[tool.pytest.ini_options]
pythonpath = ["."]

[tool.ruff]
line-length = 100
"""

needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed (apt-get install bubblewrap)"
)


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


def make_venv(root: Path) -> Path:
    """A real venv at root/.venv that sees this interpreter's pytest and ruff."""
    venv = root / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = sysconfig.get_paths()["purelib"]
    lib = next((venv / "lib").glob("python*")) / "site-packages"
    (lib / "_outer_site.pth").write_text(purelib + "\n")
    for tool in ("pytest", "ruff"):
        found = shutil.which(tool, path=str(Path(sys.executable).parent))
        assert found, f"{tool} is not installed next to {sys.executable}"
        (venv / "bin" / tool).symlink_to(found)
    return venv


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root (the .git folder and the venv included), byte for byte."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "calc"
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text(CALC)
    (root / "tests" / "test_calc.py").write_text(TESTS)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / ".gitignore").write_text(".venv/\n__pycache__/\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "fixture")
    make_venv(root)
    return root
