"""The watch plan: ignored, symlinked and .git directories are never in the OS watch set."""

from __future__ import annotations

import os
from pathlib import Path

from lsp_agent.index.watchplan import plan_watches
from tests.index.test_discovery import write


def _tree(root: Path) -> None:
    (root / ".git" / "info").mkdir(parents=True)
    (root / ".git" / "objects" / "ab").mkdir(parents=True)
    write(root, ".gitignore", "node_modules/\n*.log\n")
    write(root, "node_modules/pkg/lib/index.js", "x\n")
    write(root, "src/app/main.py")
    write(root, "src/lib/node_modules/dep/index.js", "x\n")
    write(root, "src/lib/util.py")
    write(root, "docs/guide/intro.md", "# intro\n")
    write(root, "sub/.gitignore", "out/\n")
    write(root, "sub/out/gen.py")
    write(root, "sub/keep/k.py")
    write(root, "logs.log/inner.txt", "a directory matched by a file pattern\n")


def test_plan_watches_clean_subtrees_recursively_and_skips_ignored(tmp_path: Path) -> None:
    _tree(tmp_path)
    plan = plan_watches(tmp_path)
    assert plan.recursive == ("docs", "src/app", "sub/keep")
    assert plan.flat == ("", "src", "src/lib", "sub", ".git/info")
    assert plan.dirs == {
        "",
        ".git/info",
        "docs",
        "docs/guide",
        "src",
        "src/app",
        "src/lib",
        "sub",
        "sub/keep",
    }
    assert plan.covers_subtree("docs/guide") and not plan.covers_subtree("src")
    paths = plan.paths(tmp_path, recursive=False)
    assert paths[0] == str(tmp_path) and str(tmp_path / "src" / "lib") in paths


def test_plan_watches_extra_ignore_and_exclude(tmp_path: Path) -> None:
    _tree(tmp_path)
    write(tmp_path, ".git/info/exclude", "docs/guide/\n")
    plan = plan_watches(tmp_path, extra_ignore=("src/app/",))
    assert "docs/guide" not in plan.dirs and "src/app" not in plan.dirs
    assert plan.recursive == ("sub/keep",)
    assert "docs" in plan.flat


def test_plan_watches_a_clean_root_recursively(tmp_path: Path) -> None:
    write(tmp_path, "a/b/c.py")
    plan = plan_watches(tmp_path)
    assert plan.recursive == ("",) and plan.flat == ()
    assert plan.dirs == {"", "a", "a/b"}


def test_plan_never_follows_folder_symlinks(tmp_path: Path) -> None:
    write(tmp_path, "real/x.py")
    outside = tmp_path / "outside"
    write(outside, "big/y.py")
    root = tmp_path / "root"
    write(root, "pkg/z.py")
    os.symlink(outside, root / "pkg" / "link_out")
    os.symlink(root / "pkg", root / "loop")
    plan = plan_watches(root)
    assert plan.dirs == {"", "pkg"}
    assert plan.recursive == () and plan.flat == ("", "pkg")
