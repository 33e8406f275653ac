"""Task titles: one rule (tasks/titles.py) for the server, the batch command and the worker."""

from __future__ import annotations

from lsp_agent.tasks.titles import TITLE_CHARS, first_line, task_title


def test_an_instruction_names_the_task_by_its_first_line_and_its_files():
    assert task_title(["a.py"], instruction="  \nRename add to plus\nmore") == (
        "Rename add to plus: a.py"
    )
    assert task_title(["a.py", "b.py", "c.py"], instruction="Tidy") == "Tidy: a.py (+2)"
    assert task_title(instruction="Rename   add\tto plus") == "Rename add to plus"
    assert task_title(["a.py"], instruction=" \n ") == "change: a.py"


def test_long_first_lines_are_cut_with_an_ellipsis():
    title = first_line("x" * 100)
    assert len(title) == TITLE_CHARS and title.endswith("…")


def test_a_preset_or_a_given_title_wins_over_the_instruction():
    assert task_title(["a.py"], instruction="long text", preset_title="Add docstrings") == (
        "Add docstrings: a.py"
    )
    assert task_title(["a.py"], instruction="x", given="  Given title ") == "Given title"


def test_a_fix_names_its_diagnostic_or_counts_them():
    one = [{"message": "undefined name 'y'\nsecond line"}]
    assert task_title(["a.py"], diagnostics=one) == "Fix \"undefined name 'y'\" in a.py"
    assert task_title(["a.py"], diagnostics=[{"message": ""}]) == "Fix 1 diagnostic in a.py"
    two = [{"message": "a"}, {"message": "b"}]
    assert task_title(["a.py"], diagnostics=two) == "Fix 2 diagnostics in a.py"


def test_the_batch_command_titles_a_fix_by_the_rule():
    from pathlib import Path

    from lsp_agent.batch.options import BatchOptions
    from lsp_agent.batch.plan import plan_fix

    diagnostic = {
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}},
        "message": "unused import os",
        "severity": 2,
    }
    options = BatchOptions(kind="fix", instruction="", paths=[], cwd=Path("."))
    tasks, _ = plan_fix(options, None, {"a.py": [diagnostic]}, {"a.py": object()})
    assert tasks[0].title == 'Fix "unused import os" in a.py'
