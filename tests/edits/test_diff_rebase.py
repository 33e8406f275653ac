"""Unified diffs (checked with the real `git apply`) and the three-way rebase."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lsp_agent.edits import rebase, unified_diff

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "edits"


def test_unified_diff_matches_golden_file() -> None:
    old = "def f():\n    return 1\n\n\nprint(f())\n"
    new = "def f():\n    return 2\n\n\nprint(f())"
    expected = (FIXTURES / "no_final_newline.diff").read_text()
    assert unified_diff("pkg/mod.py", old, new) == expected


def test_unified_diff_of_equal_texts_is_empty() -> None:
    assert unified_diff("a.py", "x\n", "x\n") == ""


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("a\nb\nc\n", "a\nB\nc\n"),
        ("a\nb", "a\nb\n"),
        ("a\nb\n", "a\nb"),
        ("a\r\nb\r\n", "a\r\nX\r\nb\r\n"),
        ("", "new file\n"),
        ("only\n", ""),
    ],
)
def test_unified_diff_applies_with_git(tmp_path: Path, old: str, new: str) -> None:
    target = tmp_path / "pkg" / "f.txt"
    target.parent.mkdir()
    target.write_bytes(old.encode())
    patch = tmp_path / "change.diff"
    patch.write_bytes(unified_diff("pkg/f.txt", old, new).encode())
    subprocess.run(
        ["git", "apply", "--unsafe-paths", "--whitespace=nowarn", str(patch)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    assert target.read_bytes() == new.encode()


BASE = "".join(f"line {i}\n" for i in range(12))


def test_rebase_clean_when_changes_are_apart() -> None:
    task = BASE.replace("line 2\n", "line two\n")
    user = BASE.replace("line 9\n", "line 9\nuser added\n")
    merged = rebase(BASE, task, user)
    assert merged == BASE.replace("line 2\n", "line two\n").replace(
        "line 9\n", "line 9\nuser added\n"
    )


def test_rebase_shifted_lines_land_in_the_right_place() -> None:
    task = BASE.replace("line 10\n", "line ten\n")
    user = "header\nheader\n" + BASE.replace("line 1\n", "")
    merged = rebase(BASE, task, user)
    assert merged == "header\nheader\n" + BASE.replace("line 1\n", "").replace(
        "line 10\n", "line ten\n"
    )


def test_rebase_conflict_returns_none() -> None:
    task = BASE.replace("line 5\n", "task five\n")
    user = BASE.replace("line 5\n", "user five\n")
    assert rebase(BASE, task, user) is None


def test_rebase_adjacent_changes_conflict() -> None:
    task = BASE.replace("line 5\n", "task five\n")
    user = BASE.replace("line 6\n", "user six\n")
    assert rebase(BASE, task, user) is None


def test_rebase_identical_change_on_both_sides_is_clean() -> None:
    both = BASE.replace("line 5\n", "five\n").replace("line 8\n", "eight\n")
    task = BASE.replace("line 5\n", "five\n")
    assert rebase(BASE, task, both) == both


def test_rebase_trivial_cases() -> None:
    task = BASE.replace("line 1\n", "x\n")
    assert rebase(BASE, task, BASE) == task
    assert rebase(BASE, BASE, task) == task
