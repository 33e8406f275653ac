"""Two tasks of one run changed the same file: one diff per file that applies to the tree the
run read (the later change rebased onto the earlier), or the later task marked as overlapping;
``--apply`` writes the rebased change instead of refusing it as "changed underneath"."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lsp_agent.batch.apply import APPLIED, SKIPPED
from lsp_agent.batch.engine import _apply
from lsp_agent.batch.overlap import RunFiles
from lsp_agent.batch.report import TaskOutcome, diff_text, exit_code
from lsp_agent.edits import unified_diff
from lsp_agent.tasks.model import Task, TaskState

ORIGINAL = "def a():\n    return 1\n\n\ndef b():\n    return 2\n\n\ndef c():\n    return 3\n"


def _outcome(new: str, original: str = ORIGINAL) -> TaskOutcome:
    task = Task.new({"files": ["m.py"]})
    task.state = TaskState.SUCCEEDED
    change = {
        "path": "m.py",
        "original_text": original,
        "new_text": new,
        "diff": unified_diff("m.py", original, new),
        "blocks": [],
    }
    task.result = {"state": "succeeded", "changes": [change]}
    return TaskOutcome(task)


def test_two_changes_of_one_file_become_one_diff_that_applies(tmp_path: Path) -> None:
    first = _outcome(ORIGINAL.replace("return 1", "return 10"))
    second = _outcome(ORIGINAL.replace("return 3", "return 30"))
    diff = diff_text([first, second])
    assert diff.count("--- a/m.py") == 1
    (tmp_path / "m.py").write_text(ORIGINAL)
    (tmp_path / "d.patch").write_text(diff)
    subprocess.run(["git", "apply", "d.patch"], cwd=tmp_path, check=True)
    assert (tmp_path / "m.py").read_text() == ORIGINAL.replace("return 1", "return 10").replace(
        "return 3", "return 30"
    )
    assert exit_code([first, second]) == 0


def test_a_change_that_overlaps_an_earlier_one_is_left_out_and_fails() -> None:
    first = _outcome(ORIGINAL.replace("return 2", "return 20"))
    second = _outcome(ORIGINAL.replace("return 2", "return 22"))
    diff = diff_text([first, second])
    assert "return 20" in diff and "return 22" not in diff
    assert second.overlap is not None and first.task.id in second.overlap
    assert not second.ok and "overlaps" in (second.error or "")
    assert exit_code([first, second]) == 1


class _Worker:
    def refresh(self, paths: list[str], before: dict[str, str] | None = None) -> None:
        self.refreshed = paths


class _Progress:
    def note(self, message: str) -> None:
        self.noted = message


class _Journal:
    def record(self, task: Task) -> None:
        pass


def test_apply_rebases_onto_what_the_run_wrote_and_refuses_an_overlap(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(ORIGINAL)
    files = RunFiles()
    first = _outcome(ORIGINAL.replace("return 1", "return 10"))
    second = _outcome(ORIGINAL.replace("return 3", "return 30"))
    third = _outcome(ORIGINAL.replace("return 1", "return 11"))
    for outcome in (first, second, third):
        _apply(tmp_path, outcome, _Journal(), _Worker(), _Progress(), files)  # type: ignore[arg-type]
    assert [a.status for a in first.apply + second.apply] == [APPLIED, APPLIED]
    assert (tmp_path / "m.py").read_text() == ORIGINAL.replace("return 1", "return 10").replace(
        "return 3", "return 30"
    )
    assert [a.status for a in third.apply] == [SKIPPED] and third.overlap is not None
