"""Scratch trees: the workspace as on disk (uncommitted and untracked files included), nothing
written to the user's tree or repository, and real git worktrees for callers that commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_agent.verify.sandbox import run_sandboxed
from lsp_agent.verify.scratch import (
    ScratchError,
    add_worktree,
    create_scratch,
    overlay_problem,
    remove_worktree,
)
from tests.verify.conftest import CALC, git, needs_bwrap, tree_digest


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


@needs_bwrap
def test_overlay_tree_copies_nothing_and_never_writes_the_user_files(
    project: Path, tmp_path: Path
) -> None:
    """The overlay tree is a layer of the written files only; a sandboxed run sees the whole
    workspace with the layer over it, writes (even into the user's files) land in a per-run
    upper folder that is thrown away, and the user's tree stays byte for byte the same."""
    if why := overlay_problem(project.resolve(), tmp_path):
        pytest.fail(f"overlayfs should work here (root or a user namespace): {why}")
    (project / "notes.py").write_text("NOTE = 'untracked'\n")
    before = tree_digest(project)
    frozen = {"calc.py": CALC.replace("a * b", "b * a")}
    with create_scratch(project, tmp_path / "s", texts=frozen, mode="overlay") as tree:
        assert tree.kind == "overlay"
        assert sorted(p.name for p in tree.path.rglob("*")) == ["calc.py"], "nothing copied"
        tree.write_texts({"pyproject.toml": None, "new/mod.py": "Y = 2\n"})
        assert tree.read_text("calc.py") == frozen["calc.py"]
        assert tree.read_text("notes.py") == "NOTE = 'untracked'\n"
        assert tree.read_text("pyproject.toml") is None
        with pytest.raises(ValueError, match="outside"):
            tree.write_texts({"../escape.py": "no\n"})
        code = (
            "import os, sys\n"
            "print(sorted(os.listdir('.')))\n"
            "print(open('calc.py').read().count('b * a'), open('notes.py').read().strip())\n"
            "print(open('new/mod.py').read().strip())\n"
            "open('tests/test_calc.py', 'a').write('# written by a check\\n')\n"
            "open('calc.py', 'w').write('clobbered')\n"
            "os.remove('notes.py')\n"
            "open('made-by-check.txt', 'w').write('x')\n"
            "open('.venv/probe', 'w')\n"
        )
        python = str(project / ".venv" / "bin" / "python")
        first = run_sandboxed([python, "-u", "-c", code], tree=tree, workspace=project)
        assert first.exit_code == 1, first.output
        assert "Read-only file system" in first.output, "the venv stays read-only"
        listing, counts, mod = first.output.splitlines()[:3]
        assert "pyproject.toml" not in listing and "notes.py" in listing and "new" in listing
        assert counts == "1 NOTE = 'untracked'" and mod == "Y = 2"
        # The next run starts from the same tree: the first run's writes are gone.
        again = run_sandboxed(
            [
                python,
                "-c",
                "import os; print(os.path.exists('made-by-check.txt'), "
                "open('calc.py').read().count('b * a'), os.path.exists('notes.py'))",
            ],
            tree=tree,
            workspace=project,
        )
        assert again.ok and again.output.split() == ["False", "1", "True"], again.output
        assert list((tree.top / "runs").iterdir()) == [], "run folders are removed"
    assert tree_digest(project) == before, "the user's files, .git and .venv are untouched"
    assert not tree.top.exists()


def test_overlay_tree_notices_the_workspace_changing_under_it(
    project: Path, tmp_path: Path
) -> None:
    frozen = {"calc.py": CALC}
    with create_scratch(project, tmp_path / "s", texts=frozen, mode="overlay") as tree:
        assert not tree.base_changed()
        (project / "calc.py").write_text(CALC + "# saved by the editor\n")
        assert not tree.base_changed(), "a frozen buffer shadows its file on disk"
        (project / "tests" / "test_calc.py").write_text("def test_x():\n    pass\n")
        assert tree.base_changed()
        assert not tree.base_changed(), "the tree took the new base"
