"""PATH arguments (files, folders, globs) to indexed, root-relative paths."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from lsp_agent.batch.errors import UsageError
from lsp_agent.batch.selection import select_files


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict[str, SimpleNamespace]]:
    for rel in ("pkg/a.py", "pkg/sub/b.py", "pkg/README.md", "web/app.js", "top.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x\n")
    entries = {
        "pkg/a.py": SimpleNamespace(language="python"),
        "pkg/sub/b.py": SimpleNamespace(language="python"),
        "pkg/README.md": SimpleNamespace(language=None),
        "web/app.js": SimpleNamespace(language="javascript"),
        "top.py": SimpleNamespace(language="python"),
    }
    return tmp_path, entries


def test_folders_select_source_files_files_are_taken_as_given(tree) -> None:
    root, entries = tree
    assert select_files(root, ["pkg"], entries, cwd=root) == ["pkg/a.py", "pkg/sub/b.py"]
    assert select_files(root, ["README.md"], entries, cwd=root / "pkg") == ["pkg/README.md"]
    assert select_files(root, [], entries, cwd=root) == [
        "pkg/a.py",
        "pkg/sub/b.py",
        "top.py",
        "web/app.js",
    ]


def test_globs_match_indexed_files_relative_to_cwd(tree) -> None:
    root, entries = tree
    assert select_files(root, ["**/*.py"], entries, cwd=root) == [
        "pkg/a.py",
        "pkg/sub/b.py",
        "top.py",
    ]
    assert select_files(root, ["*.md", "../web/*"], entries, cwd=root / "pkg") == [
        "pkg/README.md",
        "web/app.js",
    ]


@pytest.mark.parametrize(
    ("arg", "needle"),
    [
        ("missing.py", "no such file"),
        ("../outside", "outside the workspace root"),
        ("*.rs", "matches no indexed file"),
    ],
)
def test_bad_paths_are_usage_errors(tree, arg: str, needle: str) -> None:
    root, entries = tree
    (root.parent / "outside").mkdir(exist_ok=True)
    with pytest.raises(UsageError, match=needle):
        select_files(root, [arg], entries, cwd=root)


def test_unindexed_file_is_refused(tree) -> None:
    root, entries = tree
    (root / "ignored.log").write_text("x")
    with pytest.raises(UsageError, match="not in the index"):
        select_files(root, ["ignored.log"], entries, cwd=root)
