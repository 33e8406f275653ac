"""WorkspaceIndex over real files: build, buffers, refresh, lookups, grep, notifications."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from lsp_agent.config import IndexSettings
from lsp_agent.index.workspace import WorkspaceIndex, relative_path
from tests.index.test_discovery import write


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, ".gitignore", "build/\n*.pyc\n")
    write(tmp_path, "pkg/__init__.py", "")
    write(
        tmp_path,
        "pkg/core.py",
        "def compute(x):\n    return helper(x)\n\n\ndef helper(x):\n    return x + 1\n",
    )
    write(tmp_path, "pkg/use.py", "from pkg.core import compute\n\nVALUE = compute(2)\n")
    write(tmp_path, "web/app.ts", "export function compute(): number { return 1; }\n")
    write(tmp_path, "README.md", "# Demo\ncompute things\n")
    write(tmp_path, "build/gen.py", "def generated(): pass\n")
    write(tmp_path, "pkg/core.cpython-311.pyc", b"\x00\x01")
    write(tmp_path, "data.bin", b"abc\x00def")
    return tmp_path


def make(root: Path, **settings: object) -> WorkspaceIndex:
    return WorkspaceIndex(root, IndexSettings(**settings), cache_path=None)  # type: ignore[arg-type]


def test_build_entries_stats_and_lookups(project: Path) -> None:
    index = make(project)
    stats = index.build(jobs=1)
    entries = index.entries()
    assert list(entries) == sorted(entries)
    assert set(entries) == {
        ".gitignore",
        "README.md",
        "pkg/__init__.py",
        "pkg/core.py",
        "pkg/use.py",
        "web/app.ts",
    }
    assert entries["README.md"].language is None and entries["README.md"].lines == 2
    assert stats.files == 6
    assert stats.languages == {"python": 3, "typescript": 1}
    assert stats.skipped == {"binary": 1, "ignored": 2}
    assert stats.parsed == 6 and stats.from_cache == 0
    assert [(p, d.start_line) for p, d in index.definitions("compute")] == [
        ("pkg/core.py", 0),
        ("web/app.ts", 0),
    ]
    assert [(p, r.kind) for p, r in index.references("compute")] == [
        ("pkg/use.py", "import"),
        ("pkg/use.py", "call"),
    ]
    assert index.definitions("generated") == []
    assert index.text("pkg/use.py") == (project / "pkg/use.py").read_text()
    assert index.get("build/gen.py") is None
    assert index.is_ignored("build/gen.py") and not index.is_ignored("pkg/core.py")


def test_update_overrides_disk_until_closed(project: Path) -> None:
    index = make(project)
    index.build(jobs=1)
    index.definitions("compute")  # build the lookup tables so they are maintained incrementally
    before = index.entries()
    generation = index.generation
    seen: list[set[str]] = []
    index.subscribe(seen.append)

    entry = index.update("pkg/core.py", "def renamed(x):\n    return x\n")
    assert entry is not None and entry.from_buffer
    assert [d.name for d in entry.definitions] == ["renamed"]
    assert index.text("pkg/core.py") == "def renamed(x):\n    return x\n"
    assert index.generation > generation
    assert seen == [{"pkg/core.py"}]
    assert [p for p, _ in index.definitions("compute")] == ["web/app.ts"]
    assert [p for p, _ in index.definitions("renamed")] == ["pkg/core.py"]
    after = index.entries()
    # only that file's entry changed
    assert {p for p in after if after[p] != before[p]} == {"pkg/core.py"}

    # The same text again is not a change.
    generation = index.generation
    assert index.update("pkg/core.py", "def renamed(x):\n    return x\n") is entry
    assert index.generation == generation

    # A disk write while the buffer is open does not win.
    write(project, "pkg/core.py", "def from_disk(): pass\n")
    assert index.refresh(["pkg/core.py"]) == set()
    assert index.definitions("from_disk") == []

    index.close_buffer("pkg/core.py")
    assert index.text("pkg/core.py") == "def from_disk(): pass\n"
    assert [p for p, _ in index.definitions("from_disk")] == ["pkg/core.py"]
    assert index.definitions("renamed") == []
    assert not index.get("pkg/core.py").from_buffer  # type: ignore[union-attr]


def test_update_of_a_new_unsaved_file_and_of_an_ignored_file(project: Path) -> None:
    index = make(project)
    index.build(jobs=1)
    entry = index.update("pkg/new.py", "class Fresh:\n    pass\n")
    assert entry is not None and [d.name for d in entry.definitions] == ["Fresh"]
    assert index.update("build/gen.py", "def x(): pass\n") is None
    assert index.text("build/gen.py") == "def x(): pass\n"
    index.build(jobs=1)  # a rebuild (e.g. the server's first one) keeps open buffers
    assert index.get("pkg/new.py") is not None and index.get("pkg/new.py").from_buffer
    index.close_buffer("pkg/new.py")  # never saved: gone
    assert index.get("pkg/new.py") is None


def test_refresh_create_modify_delete_rename_and_folders(project: Path) -> None:
    index = make(project)
    index.build(jobs=1)
    index.references("compute")
    write(project, "pkg/extra.py", "def extra(): compute()\n")
    (project / "pkg/use.py").unlink()
    os.rename(project / "web", project / "frontend")
    changed = index.refresh(["pkg/extra.py", "pkg/use.py", "web", "frontend"])
    assert changed == {"pkg/extra.py", "pkg/use.py", "web/app.ts", "frontend/app.ts"}
    assert index.get("pkg/use.py") is None and index.get("web/app.ts") is None
    assert index.get("frontend/app.ts") is not None
    assert [p for p, _ in index.references("compute")] == ["pkg/extra.py"]
    # Touching a file without changing it is not a change.
    os.utime(project / "pkg/extra.py", ns=(1, 1))
    assert index.refresh(["pkg/extra.py"]) == set()
    # An absolute path works; a path outside the root is ignored.
    write(project, "pkg/extra.py", "def extra2(): pass\n")
    assert index.refresh([str(project / "pkg/extra.py"), "/elsewhere/x.py"]) == {"pkg/extra.py"}


def test_refresh_of_gitignore_rescans(project: Path) -> None:
    index = make(project)
    index.build(jobs=1)
    write(project, ".gitignore", "*.pyc\npkg/\n")
    changed = index.refresh([".gitignore"])
    assert "build/gen.py" in changed and "pkg/core.py" in changed
    assert index.get("build/gen.py") is not None and index.get("pkg/core.py") is None


def test_grep(project: Path) -> None:
    index = make(project)
    index.build(jobs=1)
    assert index.grep("compute(") == [
        ("pkg/core.py", 0, "def compute(x):"),
        ("pkg/use.py", 2, "VALUE = compute(2)"),
        ("web/app.ts", 0, "export function compute(): number { return 1; }"),
    ]
    assert index.grep(r"^def \w+\(x\)", regex=True, limit=1) == [
        ("pkg/core.py", 0, "def compute(x):")
    ]
    index.update("README.md", "compute in a buffer\n")
    assert ("README.md", 0, "compute in a buffer") in index.grep("compute")
    with pytest.raises(ValueError, match="invalid regular expression"):
        index.grep("(", regex=True)


def test_relative_path(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    assert relative_path(root, root / "a" / "b.py") == "a/b.py"
    assert relative_path(root, "a/./c/../b.py") == "a/b.py"
    assert relative_path(root, root) == ""
    for bad in ("../x.py", "/etc/passwd", str(root) + "-other/x.py"):
        with pytest.raises(ValueError, match="outside the workspace root"):
            relative_path(root, bad)
    alias = tmp_path.parent / f"{tmp_path.name}-alias"
    os.symlink(root, alias)  # the same root under another spelling
    assert relative_path(root, alias / "a.py") == "a.py"
    index = make(tmp_path)
    with pytest.raises(ValueError):
        index.update("../escape.py", "x = 1\n")


def test_concurrent_updates_and_reads_stay_consistent(project: Path) -> None:
    index = make(project)
    index.build(jobs=1)
    errors: list[BaseException] = []

    def editor(n: int) -> None:
        try:
            for i in range(30):
                index.update(f"pkg/buf{n}.py", f"def f{n}_{i}(): pass\n")
                index.definitions(f"f{n}_{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=editor, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for n in range(4):
        assert [p for p, _ in index.definitions(f"f{n}_29")] == [f"pkg/buf{n}.py"]
        assert index.definitions(f"f{n}_28") == []


def test_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        WorkspaceIndex(tmp_path / "nope", cache_path=None)


def test_gitignore_inside_an_ignored_folder_does_not_rescan(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = make(project)
    index.build(jobs=1)
    builds: list[int] = []
    real_build = index.build
    monkeypatch.setattr(index, "build", lambda **kw: builds.append(1) or real_build(**kw))
    write(project, "build/.gitignore", "!*\n")
    assert index.refresh(["build/.gitignore"]) == set()
    assert builds == []
    write(project, "pkg/.gitignore", "use.py\n")
    assert index.refresh(["pkg/.gitignore"]) == {"pkg/.gitignore", "pkg/use.py"}
    assert builds == [1]


def test_a_refresh_during_a_build_is_not_lost(tmp_path: Path) -> None:
    """The watcher refreshes a file (and sees another deleted) while a build is reading the
    disk; the build's swap at the end must not bring back what it read before."""
    write(tmp_path, "a.py", "def old_name():\n    pass\n")
    write(tmp_path, "b.py", "def doomed():\n    pass\n")
    index = WorkspaceIndex(tmp_path, cache_path=None)
    index.build(jobs=1)
    write(tmp_path, "c.py", "def c():\n    pass\n")  # so the second build has work to do
    refreshed = False

    def progress(done: int, total: int) -> None:
        nonlocal refreshed
        if done == total and not refreshed:  # every file read: the swap is next
            refreshed = True
            write(tmp_path, "a.py", "def new_name():\n    pass\n")
            (tmp_path / "b.py").unlink()
            index.refresh(["a.py", "b.py"])

    os.utime(tmp_path / "a.py", ns=(1, 1))  # unchanged size+mtime would be reused, not read
    index.build(jobs=1, progress=progress)
    assert refreshed
    assert [p for p, _ in index.definitions("new_name")] == ["a.py"]
    assert index.definitions("old_name") == []
    assert index.get("b.py") is None and index.definitions("doomed") == []
    assert index.get("c.py") is not None


def test_a_buffer_past_the_limits_is_served_but_not_indexed(tmp_path: Path) -> None:
    write(tmp_path, "a.py", "def small():\n    pass\n")
    index = WorkspaceIndex(tmp_path, IndexSettings(max_file_bytes=100), cache_path=None)
    index.build(jobs=1)
    assert index.unavailable("a.py") is None
    big = "def big():\n    pass\n" + "x = 1\n" * 50
    assert index.update("a.py", big) is None  # grew past max_file_bytes while open
    assert index.get("a.py") is None and index.definitions("small") == []
    assert index.text("a.py") == big and index.unavailable("a.py") == "too_large"
    assert index.update("bin.py", "a\0b") is None
    assert index.unavailable("bin.py") == "binary"
    assert index.update("a.py", "def again():\n    pass\n") is not None
    assert [p for p, _ in index.definitions("again")] == ["a.py"]
