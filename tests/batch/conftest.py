"""Fixtures for the batch command: a fresh copy of the fixture repository, a scripted model
playing every role, and ways to run the CLI (in process, or as a real subprocess)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from lsp_agent import cli
from lsp_agent.config import workspace_cache_dir
from lsp_agent.tasks.journal import TaskJournal
from lsp_agent.tasks.model import Task
from tests.batch.support import BatchModel, copy_repo
from tests.support.scripted_model import ScriptedModel

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_repo(tmp_path / "repo")


@pytest.fixture
def hook(repo: Path) -> BatchModel:
    return BatchModel(repo)


@pytest.fixture
def model(hook: BatchModel, monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedModel]:
    with ScriptedModel(hook=hook) as server:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", server.url)
        yield server


def run_in_process(argv: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(argv)
    return Run(code, out.getvalue(), err.getvalue())


def run_subprocess(argv: list[str], cwd: Path, **popen: object) -> Run:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "lsp_agent", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def last_run(root: Path) -> list[Task]:
    """The tasks of the latest batch run journaled for ``root``, sorted by their files: what
    `--apply` did (its stdout carries nothing; `lsp-agent tasks --json --run ID` shows it)."""
    with TaskJournal(workspace_cache_dir(root.resolve()) / "tasks.sqlite") as journal:
        tasks = journal.list()
    latest = tasks[0].run_id
    return sorted((t for t in tasks if t.run_id == latest), key=lambda t: t.files)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root except the cache, by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
