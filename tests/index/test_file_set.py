"""The file set on real trees: git's own view inside a work tree (git itself is the oracle),
ignore rules outside it, the "ignore rules left almost nothing" message, caps, /proc."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from lsp_agent.config import IndexSettings
from lsp_agent.index import WorkspaceIndex
from lsp_agent.index.discovery import (
    IgnoreRules,
    TooManyFiles,
    discover,
    sparse_ignore_warning,
)

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True
    ).stdout


def write(root: Path, rel: str, text: str = "x = 1\n") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def found(root: Path, settings: IndexSettings = IndexSettings()) -> list[str]:  # noqa: B008
    rules = IgnoreRules.for_settings(root, settings)
    return [f.path for f in discover(root, rules, settings.max_file_bytes).files]


def git_view(root: Path) -> list[str]:
    out = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return sorted(p for p in out.split("\0") if p)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Real stdlib packages in a git repository whose ignore rules cover tracked files."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    for package in ("json", "email", "tomllib"):
        shutil.copytree(
            STDLIB / package, root / "lib" / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    write(root, ".gitignore", "*.log\n/build/\nlib/email/\n")
    write(root, "lib/json/.gitignore", "tool.py\n!keep.log\n")
    write(root, "lib/json/keep.log", "kept by a negation\n")
    write(root, "notes.log", "tracked although *.log ignores it\n")
    write(root, "build/generated.py")
    git(root, "add", "-A")  # what the rules allow...
    forced = ("notes.log", "lib/email/parser.py", "build/generated.py", "lib/json/tool.py")
    git(root, "add", "-f", *forced)  # ...and more
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    # untracked files, some ignored
    write(root, "scratch.log", "untracked and ignored\n")
    write(root, "lib/email/untracked.py")  # untracked inside an ignored folder
    write(root, "build/untracked.py")
    write(root, "new_module.py")  # untracked, not ignored
    (root / ".git" / "info" / "exclude").write_text("new_private.py\n")
    write(root, "new_private.py")
    return root


def test_inside_git_the_file_set_is_gits_own_view(repo: Path) -> None:
    expected = git_view(repo)
    # the cases that matter are really in git's view
    assert {"notes.log", "lib/email/parser.py", "build/generated.py", "new_module.py"} <= set(
        expected
    )
    assert not {"scratch.log", "lib/email/untracked.py", "build/untracked.py"} & set(expected)
    assert "new_private.py" not in expected and "lib/json/tool.py" in expected  # tracked
    assert found(repo) == expected


def test_index_and_is_ignored_agree_with_git(repo: Path) -> None:
    index = WorkspaceIndex(repo, IndexSettings(), cache_path=None)
    index.build()
    assert sorted(index.entries()) == [p for p in git_view(repo)]
    assert not index.is_ignored("notes.log")  # tracked, matches *.log
    assert not index.is_ignored("lib/email/parser.py")  # tracked inside an ignored folder
    assert index.is_ignored("lib/email/untracked.py")
    assert index.is_ignored("scratch.log")


def test_no_ignore_and_index_ignore(repo: Path) -> None:
    everything = found(repo, IndexSettings(use_gitignore=False))
    assert {"scratch.log", "lib/email/untracked.py", "build/untracked.py"} <= set(everything)
    # the user's own index.ignore applies to tracked files too
    assert "notes.log" not in found(repo, IndexSettings(ignore=("notes.log",)))


def debian_tree(root: Path) -> Path:
    """A Debian source package as unpacked (not a git repository): `/*` then `!/debian/`."""
    for package in ("json", "tomllib", "email"):
        shutil.copytree(
            STDLIB / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    write(root, "Makefile", "all:\n")
    write(root, "debian/rules", "#!/usr/bin/make -f\n")
    write(root, "debian/control", "Source: x\n")
    write(root, ".gitignore", "# generated files\n*.o\n\n/*\n!/debian/\n!.gitignore\n")
    return root


def test_debian_style_gitignore_is_explained_with_file_and_pattern(tmp_path: Path) -> None:
    root = debian_tree(tmp_path / "linux-source")
    rules = IgnoreRules.for_settings(root, IndexSettings())
    kept = found(root)
    assert kept == [".gitignore", "debian/control", "debian/rules"]
    message = sparse_ignore_warning(root, rules, len(kept))
    assert message is not None
    assert ".gitignore:4 has `/*`" in message
    assert "index.ignore" in message and "--no-ignore" in message
    # both ways out work
    assert "json/decoder.py" in found(root, IndexSettings(use_gitignore=False))
    negated = found(root, IndexSettings(ignore=("!/*",)))
    assert "json/decoder.py" in negated and "Makefile" in negated


def test_everything_ignored_says_nothing_is_left(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "*\n")
    write(tmp_path, "a.py")
    write(tmp_path, "b.py")
    rules = IgnoreRules.for_settings(tmp_path, IndexSettings())
    message = sparse_ignore_warning(tmp_path, rules, 0)
    assert message is not None and "left nothing" in message and "`*`" in message


def test_ordinary_ignores_say_nothing(tmp_path: Path) -> None:
    for package in ("json", "tomllib"):
        shutil.copytree(STDLIB / package, tmp_path / "src" / package)
    shutil.copytree(STDLIB / "email", tmp_path / "node_modules" / "email")  # more files
    write(tmp_path, ".gitignore", "node_modules/\n__pycache__/\n")
    write(tmp_path, "README.md", "# p\n")
    write(tmp_path, "pyproject.toml", "")
    kept = found(tmp_path)
    rules = IgnoreRules.for_settings(tmp_path, IndexSettings())
    assert sparse_ignore_warning(tmp_path, rules, len(kept)) is None


def test_file_count_cap(tmp_path: Path, repo: Path) -> None:
    for n in range(30):
        write(tmp_path / "plain", f"m{n}.py")
    rules = IgnoreRules.for_settings(tmp_path / "plain", IndexSettings())
    with pytest.raises(TooManyFiles, match="more than 20 files"):
        discover(tmp_path / "plain", rules, 1 << 20, max_files=20)
    assert len(discover(tmp_path / "plain", rules, 1 << 20, max_files=30).files) == 30
    # in git the tracked count decides before any walking
    with pytest.raises(TooManyFiles, match="git tracks"):
        discover(repo, IgnoreRules.for_settings(repo, IndexSettings()), 1 << 20, max_files=5)
    index = WorkspaceIndex(tmp_path / "plain", IndexSettings(max_files=10), cache_path=None)
    with pytest.raises(TooManyFiles, match=r"index\.max_files"):
        index.build()


def test_system_trees_are_never_walked() -> None:
    for tree in ("/proc", "/sys", "/dev"):
        root = Path(tree)
        result = discover(root, IgnoreRules(root), 1 << 20)
        assert result.files == []


def test_index_command_prints_the_root_first_and_the_sparse_warning(tmp_path: Path) -> None:
    import os
    import sys

    root = debian_tree(tmp_path / "pkg")
    proc = subprocess.run(
        [sys.executable, "-m", "lsp_agent", "index", str(root), "--no-cache"],
        capture_output=True,
        text=True,
        env={**os.environ, "LSP_AGENT_CACHE_DIR": str(tmp_path / "cache")},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"workspace root {root} (given as PATH)"
    assert ".gitignore:4 has `/*`" in proc.stderr and "--no-ignore" in proc.stderr
    everything = subprocess.run(
        [sys.executable, "-m", "lsp_agent", "index", str(root), "--no-cache", "--no-ignore"],
        capture_output=True,
        text=True,
        env={**os.environ, "LSP_AGENT_CACHE_DIR": str(tmp_path / "cache")},
        check=False,
    )
    assert everything.returncode == 0 and "has `/*`" not in everything.stderr
    assert int(everything.stdout.splitlines()[1].split()[0]) > 20  # "  N files indexed ..."
