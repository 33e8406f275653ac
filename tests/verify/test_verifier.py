"""Baseline vs after on the fixture project with real pytest and ruff in the sandbox."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lsp_agent.verify.checks import configured_checks, detect_checks, parse_commands
from lsp_agent.verify.sandbox import Limits
from lsp_agent.verify.verifier import Verifier
from tests.verify.conftest import CALC, needs_bwrap, tree_digest

pytestmark = needs_bwrap


def test_detects_pytest_and_ruff_from_the_venv(project: Path) -> None:
    checks, notes = detect_checks(project)
    assert [(c.name, c.kind) for c in checks] == [("pytest", "test"), ("ruff", "lint")]
    assert checks[0].argv[0] == str(project / ".venv" / "bin" / "python")
    assert checks[1].argv[0] == str(project / ".venv" / "bin" / "ruff")
    assert notes == []


def test_nothing_to_detect(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    assert detect_checks(tmp_path) == ([], [])


def test_configured_commands_list_and_table_forms() -> None:
    listed = [
        {"name": "unit", "command": "python -m pytest -q tests", "kind": "test"},
        {"name": "lint", "command": ["ruff", "check", "."], "kind": "lint"},
        {"name": "shell", "command": "make check"},
    ]
    checks, problems = configured_checks(listed)
    assert problems == []
    assert [(c.name, c.kind, c.parser, c.selectable) for c in checks] == [
        ("unit", "test", "pytest", True),
        ("lint", "lint", "ruff", False),
        ("shell", "test", "exit", False),
    ]
    table = {
        "unit": {"command": "python -m pytest -q tests", "kind": "test"},
        "lint": {"command": ["ruff", "check", "."], "kind": "lint"},
        "shell": "make check",
    }
    assert configured_checks(table) == (checks, [])


@pytest.mark.parametrize(
    ("commands", "message"),
    [
        ([{"name": "t", "command": 3}], "verify.commands[1].command must be a command line"),
        ([{"name": "t", "command": ""}], "verify.commands[1].command must be a command line"),
        ([{"name": "t", "command": "x 'open"}], "verify.commands[1].command cannot be read"),
        ([{"name": "t", "command": "x", "kind": "deploy"}], "verify.commands[1].kind must be"),
        ([{"command": "x"}], "verify.commands[1].name must be a non-empty string"),
        ([{"name": "a", "command": "x"}, {"name": "a", "command": "y"}], "[2].name 'a' is used"),
        ([{"name": "t", "command": "x", "cwd": "/"}], "verify.commands[1]: unknown key 'cwd'"),
        (["pytest"], "verify.commands[1] must be a table"),
        ("pytest -q", "verify.commands must be a list"),
    ],
)
def test_bad_command_entries_name_their_key(commands: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_commands(commands)
    assert configured_checks(commands)[0] == []


def verifier(project: Path, tmp_path: Path, **kw: object) -> Verifier:
    checks, _ = detect_checks(project)
    return Verifier(
        project,
        checks,
        limits=Limits(wall_seconds=120),
        scratch_parent=tmp_path / "scratch",
        cache_dir=tmp_path / "cache",
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("overlay", [True, False], ids=["overlay", "copy"])
def test_new_failures_only_and_the_user_tree_untouched(
    project: Path, tmp_path: Path, overlay: bool
) -> None:
    before = tree_digest(project)
    v = verifier(project, tmp_path, overlay=overlay)
    try:
        assert v.tree().kind == ("overlay" if overlay else "git")
        base = {run.name: run for run in v.baseline()}
        assert list(base["pytest"].failures) == ["tests/test_calc.py::test_known_bug"]
        assert base["ruff"].failures == {}

        broken = CALC.replace("return a + b", "return a - b").replace(
            '"""Arithmetic', 'import os\n"""Arithmetic'
        )
        first = v.check({"calc.py": broken})
        by_name = {c.name: c for c in first.comparisons}
        assert list(by_name["pytest"].new) == ["tests/test_calc.py::test_add"]
        detail = by_name["pytest"].new["tests/test_calc.py::test_add"]
        assert "assert -1 == 5" in detail and "test_calc.py" in detail
        assert by_name["pytest"].preexisting == ["tests/test_calc.py::test_known_bug"]
        assert any("F401" in key for key in by_name["ruff"].new)
        assert first.new_failures == 1 + len(by_name["ruff"].new), first.failure_text()

        second = v.check({"calc.py": CALC.replace("return a * b", "return a * b  # same")})
        assert second.new_failures == 0, second.failure_text()
        record = v.record("passed")
        assert [r["new_failures"] for r in record["rounds"]] == [first.new_failures, 0]
        assert record["baseline"][0]["failures"] == 1
    finally:
        v.close()
    assert tree_digest(project) == before, "verification never writes the user's files"


def test_baseline_is_cached_by_content(project: Path, tmp_path: Path) -> None:
    one = verifier(project, tmp_path)
    try:
        assert not any(r.cached for r in one.baseline())
    finally:
        one.close()
    two = verifier(project, tmp_path)
    try:
        runs = two.baseline()
        assert all(r.cached for r in runs)
        assert list(runs[0].failures) == ["tests/test_calc.py::test_known_bug"]
    finally:
        two.close()
    (project / "tests" / "test_more.py").write_text("def test_more():\n    assert False\n")
    three = verifier(project, tmp_path)
    try:
        runs = three.baseline()
        assert not any(r.cached for r in runs)
        assert "tests/test_more.py::test_more" in runs[0].failures
    finally:
        three.close()


def test_frozen_buffers_are_the_baseline(project: Path, tmp_path: Path) -> None:
    """An unsaved buffer that already breaks a test is the task's starting point."""
    unsaved = CALC.replace("return a * b", "return a + b")
    v = verifier(project, tmp_path, texts={"calc.py": unsaved})
    try:
        base = {run.name: run for run in v.baseline()}
        assert "tests/test_calc.py::test_mul" in base["pytest"].failures
        fixed = v.check({"calc.py": CALC})
        pytest_cmp = next(c for c in fixed.comparisons if c.name == "pytest")
        assert pytest_cmp.new == {} and "tests/test_calc.py::test_mul" in pytest_cmp.fixed
    finally:
        v.close()


def test_workspace_changed_under_an_overlay_tree_runs_the_baseline_again(
    project: Path, tmp_path: Path
) -> None:
    """The overlay shows the live workspace: a file the user changes on disk mid-task (not a
    frozen buffer) must not be blamed on the task's edits."""
    v = verifier(project, tmp_path, texts={"calc.py": CALC})
    try:
        assert v.tree().kind == "overlay"
        v.baseline()
        tests = (project / "tests" / "test_calc.py").read_text()
        # The user breaks a test on disk while the task runs (a git pull, a save).
        (project / "tests" / "test_calc.py").write_text(
            tests.replace("add(2, 3) == 5", "add(2, 3) == 6")
        )
        result = v.check({"calc.py": CALC.replace("return a * b", "return b * a")})
        pytest_cmp = next(c for c in result.comparisons if c.name == "pytest")
        assert pytest_cmp.new == {}, "the user's own change is in the new baseline"
        assert "tests/test_calc.py::test_add" in pytest_cmp.preexisting
        # And a task edit that breaks something is still caught against the new base.
        broken = v.check({"calc.py": CALC.replace("return a * b", "return a * b + 1")})
        assert (
            "tests/test_calc.py::test_mul"
            in next(c for c in broken.comparisons if c.name == "pytest").new
        )
    finally:
        v.close()
