"""Scratch trees: the workspace as on disk (uncommitted and untracked files included), nothing
written to the user's tree or repository, and real git worktrees for callers that commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_agent.verify.scratch import ScratchError, add_worktree, create_scratch, remove_worktree
from tests.verify.conftest import git, tree_digest


def test_git_scratch_has_the_working_tree_not_just_head(project: Path, tmp_path: Path) -> None:
    (project / "calc.py").write_text("def add(a, b):\n    return a - b\n")  # uncommitted
    (project / "notes.py").write_text("X = 1\n")  # untracked
    (project / "pyproject.toml").unlink()  # deleted, not committed
    before = tree_digest(project)
    with create_scratch(project, tmp_path / "scratch") as tree:
        assert tree.kind == "git"
        assert (tree.path / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"
        assert (tree.path / "notes.py").read_text() == "X = 1\n"
        assert not (tree.path / "pyproject.toml").exists()
        assert (tree.path / "tests" / "test_calc.py").exists()
        assert not (tree.path / ".venv").exists(), "environment folders are bound, not copied"
        assert not (tree.path / ".git").exists()
        tree.write_texts({"calc.py": "changed\n", "new/mod.py": "Y = 2\n", "notes.py": None})
        assert (tree.path / "new" / "mod.py").read_text() == "Y = 2\n"
        assert not (tree.path / "notes.py").exists()
        with pytest.raises(ValueError, match="outside"):
            tree.write_texts({"../escape.py": "no\n"})
    assert tree_digest(project) == before, "the user's files and .git are untouched"
    assert not tree.top.exists()


def test_content_hash_follows_the_tree(project: Path, tmp_path: Path) -> None:
    with create_scratch(project, tmp_path) as one, create_scratch(project, tmp_path) as two:
        assert one.content_hash() == two.content_hash()
        two.write_texts({"calc.py": "x = 1\n"})
        assert one.content_hash() != two.content_hash()
    (project / "calc.py").write_text("y = 2\n")
    with create_scratch(project, tmp_path) as three:
        assert three.content_hash() != one.base_hash


def test_plain_copy_outside_git(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("A = 1\n")
    (root / "node_modules" / "x").mkdir(parents=True)
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    with create_scratch(root, tmp_path / "s") as tree:
        assert tree.kind == "copy"
        assert (tree.path / "pkg" / "a.py").read_text() == "A = 1\n"
        assert (tree.path / "run.sh").stat().st_mode & 0o111
        assert not (tree.path / "node_modules").exists()
        tree.write_texts({"pkg/a.py": "A = 2\n"})
    assert (root / "pkg" / "a.py").read_text() == "A = 1\n"


def test_subfolder_of_a_repository(project: Path, tmp_path: Path) -> None:
    with create_scratch(project / "tests", tmp_path) as tree:
        assert tree.path.name == "tests" and (tree.path / "test_calc.py").exists()


def test_bad_input(tmp_path: Path, project: Path) -> None:
    with pytest.raises(ScratchError, match="not a directory"):
        create_scratch(tmp_path / "missing")
    with pytest.raises(ScratchError, match="must not be inside"):
        create_scratch(project, project / "scratch")
    with pytest.raises(ScratchError, match="not inside a git work tree"):
        (tmp_path / "no-git").mkdir()
        create_scratch(tmp_path / "no-git", mode="git")


def test_worktree_with_its_own_branch(project: Path, tmp_path: Path) -> None:
    dest = add_worktree(project, tmp_path / "run-wt", branch="run-1")
    assert (dest / "calc.py").exists()
    (dest / "calc.py").write_text("changed = True\n")
    git(dest, "commit", "-qam", "step 1")
    assert "step 1" in git(project, "log", "--oneline", "run-1")
    assert "changed" not in (project / "calc.py").read_text()
    remove_worktree(project, dest)
    assert not dest.exists()
    assert "run-wt" not in git(project, "worktree", "list")
