"""Fixtures for the snapshot tests: a copy of the small fixture workspace and a real index."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from lsp_agent.config import ContextSettings
from lsp_agent.context.snapshot import SnapshotBuilder
from lsp_agent.index.workspace import WorkspaceIndex

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "context"
WORKSPACE = FIXTURES / "ws"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A private copy of tests/fixtures/context/ws, free to edit."""
    root = tmp_path / "ws"
    shutil.copytree(WORKSPACE, root)
    return root


@pytest.fixture
def index(workspace: Path) -> WorkspaceIndex:
    built = WorkspaceIndex(workspace, cache_path=None)
    built.build(jobs=1)
    return built


@pytest.fixture
def make_builder(index: WorkspaceIndex, tmp_path: Path) -> Callable[..., SnapshotBuilder]:
    def make(*, churn_threshold: float = 0.10, state_dir: Path | None = None) -> SnapshotBuilder:
        settings = ContextSettings(churn_threshold=churn_threshold)
        return SnapshotBuilder(index, settings, state_dir=state_dir)

    return make
