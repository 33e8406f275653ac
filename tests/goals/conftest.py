"""Fixtures for goal runs: a git repository with an uncommitted change, fast settings in the
user's config, and the CLI run in process."""

from __future__ import annotations

import io
import os
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from lsp_agent import cli
from tests.goals.support import FAST, make_repo, write_user_config


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write_user_config(Path(os.environ["XDG_CONFIG_HOME"]), FAST)
    return make_repo(tmp_path / "repo")


def goal_cli(argv: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["goal", *argv])
    return Run(code, out.getvalue(), err.getvalue())


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }
