"""Unified diffs (checked with the real `git apply`) and the three-way rebase."""

from __future__ import annotations

import random
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


@pytest.mark.parametrize("seed", range(3))
def test_rebase_random_disjoint_changes_merge_and_overlapping_ones_conflict(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(100):
        base = [f"line {i}\n" for i in range(30)]
        a = rng.randrange(0, 25)
        b = a + rng.randint(0, 3)
        task_new = [f"task {k}\n" for k in range(rng.randint(1 if a == b else 0, 3))]
        c = rng.randrange(0, 30)
        d = min(30, c + rng.randint(0, 3))
        user_new = [f"user {k}\n" for k in range(rng.randint(1 if c == d else 0, 3))]
        task = base[:a] + task_new + base[b:]
        user = base[:c] + user_new + base[d:]
        merged = rebase("".join(base), "".join(task), "".join(user))
        if b < c:  # the task's region ends at least one line before the user's starts
            assert merged == "".join(base[:a] + task_new + base[b:c] + user_new + base[d:])
        elif d < a:
            assert merged == "".join(base[:c] + user_new + base[d:a] + task_new + base[b:])
        else:
            assert merged is None, (a, b, c, d)
