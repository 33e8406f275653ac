"""safe_path: nothing resolves outside the workspace root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lsp_agent.edits import safe_path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "ws" / "pkg").mkdir(parents=True)
    (tmp_path / "outside.txt").write_text("secret")
    return tmp_path / "ws"


def test_relative_path_inside(root: Path) -> None:
    assert safe_path(root, "pkg/mod.py") == (root / "pkg" / "mod.py").resolve()


def test_absolute_path_inside_is_allowed(root: Path) -> None:
    inside = str((root / "pkg" / "a.py").resolve())
    assert safe_path(root, inside) == Path(inside)


def test_absolute_path_outside_the_root(root: Path) -> None:
    with pytest.raises(ValueError, match="outside the workspace root"):
        safe_path(root, "/etc/passwd")


def test_dotdot_escape(root: Path) -> None:
    with pytest.raises(ValueError, match="outside"):
        safe_path(root, "pkg/../../outside.txt")


def test_symlink_pointing_out(root: Path) -> None:
    os.symlink(root.parent / "outside.txt", root / "pkg" / "link.txt")
    with pytest.raises(ValueError, match="outside"):
        safe_path(root, "pkg/link.txt")


def test_empty_path_and_root_itself_are_rejected(root: Path) -> None:
    for bad in ("", "  ", ".", "pkg/.."):
        with pytest.raises(ValueError):
            safe_path(root, bad)
