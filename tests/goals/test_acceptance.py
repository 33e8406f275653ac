"""A step's acceptance check really runs: real pytest, in the real sandbox, on the step's result
in the run's worktree, with the workspace's own .venv (the worktree has none: it is gitignored).

The fixture project's tests import ``helperpkg``, which is installed only in the project's
.venv, so they pass only when verification uses that environment. ``test_triple`` fails before
the goal (``triple`` doubles): the project's checks do not blame a failure the baseline has,
so only the acceptance check notices a step that leaves it failing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.goals.acceptance import AcceptanceError, planner_note, resolve_acceptance
from lsp_agent.goals.plan import Acceptance, PlanError, validate_steps
from lsp_agent.verify.checks import Check
from tests.goals.conftest import goal_cli
from tests.goals.support import FAST, role_of, run_git, step_of, task_of, write_user_config
from tests.support.scripted_model import ScriptedModel
from tests.verify.conftest import git, make_venv, needs_bwrap

CALC = "def triple(x: int) -> int:\n    return x * 2\n"
TESTS = """from calc import triple
from helperpkg import FACTOR


def test_factor():
    assert FACTOR == 3


def test_triple():
    assert triple(2) == 2 * FACTOR
"""
PYPROJECT = '[project]\nname = "calc"\nversion = "0"\n\n[tool.pytest.ini_options]\n'
PYPROJECT += 'pythonpath = ["."]\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_user_config(Path(os.environ["XDG_CONFIG_HOME"]), FAST)
    root = tmp_path / "calc"
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text(CALC)
    (root / "tests" / "test_calc.py").write_text(TESTS)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / ".gitignore").write_text(".venv/\n__pycache__/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "fixture")
    venv = make_venv(root)
    site = next((venv / "lib").glob("python*")) / "site-packages"
    (site / "helperpkg").mkdir()
    (site / "helperpkg" / "__init__.py").write_text("FACTOR = 3\n")
    return root


def fix_step(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "title": f"Make triple triple ({key})",
        "instructions": "triple(x) must return three times x.",
        "files": ["calc.py"],
        "depends_on": [],
        "acceptance": {"kind": "tests", "value": "tests/test_calc.py::test_triple"},
    }


class CalcModel:
    """Plays every role: step s1's coder only touches a comment (the bug stays); s1b, the
    revised step, fixes it. Anything unexpected (a debugger) gets no answer: HTTP 400."""

    def __init__(self) -> None:
        self.planner_tasks: list[str] = []

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        role, key = role_of(body), step_of(body)
        if role == "planner":
            text = task_of(body)
            self.planner_tasks.append(text)
            steps = [fix_step("s1b" if "# Plan revision" in text else "s1")]
            args = {"steps": steps, "notes": "one step"}
            return {"tool_calls": [{"name": "submit_goal_plan", "arguments": args}]}
        if role == "researcher":
            targets = [{"path": "calc.py", "instructions": "fix triple"}]
            args = {"targets": targets, "notes": f"changed calc.py for {key}"}
            return {"tool_calls": [{"name": "submit_plan", "arguments": args}]}
        if role == "coder":
            after = "    return x * 3\n" if key == "s1b" else "    return x * 2  # checked\n"
            block = f"calc.py\n<<<<<<< SEARCH\n    return x * 2\n=======\n{after}>>>>>>> REPLACE\n"
            return {"reply": {"content": block}}
        if role == "reviewer":
            args = {"approved": True, "findings": []}
            return {"tool_calls": [{"name": "submit_review", "arguments": args}]}
        return None


@needs_bwrap
def test_a_failing_acceptance_check_fails_the_step_and_the_planner_revises(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = CalcModel()
    with ScriptedModel(hook=hook) as model:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        run = goal_cli(["Make triple correct", "--json"], project, monkeypatch)
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert report["state"] == "succeeded", report["reason"]

    # s1 left test_triple failing: its acceptance check (really run) failed the step.
    (failure,) = report["failures"]
    assert failure["key"] == "s1"
    assert "acceptance check failed" in failure["error"]
    assert "FAILED tests/test_calc.py::test_triple" in failure["error"]
    assert "assert 4 == (2 * 3)" in failure["error"]  # pytest's own output, from the sandbox
    # The planner was told which checks an acceptance may name, and got the failure report.
    assert "- pytest (takes test ids" in hook.planner_tasks[0]
    assert "assert 4 == (2 * 3)" in hook.planner_tasks[1]

    # s1b fixed it: committed, and its ledger record says the acceptance check passed.
    (done,) = [s for s in report["steps"] if s["state"] == "done"]
    assert done["key"] == "s1b"
    assert run_git(project, "show", f"{report['branch']}:calc.py").endswith("return x * 3\n")
    ledger = _ledger(project, report["runId"])
    verification = ledger["done"][0]["verification"]
    accepted = verification["acceptance_run"]
    assert accepted["passed"] and accepted["exit_code"] == 0
    assert "Acceptance check passed" in verification["result"]

    # Both the acceptance check and the project's checks used the workspace's .venv: the
    # baseline found only test_triple failing (test_factor imports helperpkg from the .venv,
    # which the run's worktree does not have).
    python = str(project / ".venv" / "bin" / "python")
    assert accepted["command"].startswith(python + " -m pytest")
    assert accepted["command"].endswith("tests/test_calc.py::test_triple")
    assert verification["commands"][0]["command"].startswith(python)
    assert [b["failures"] for b in verification["baseline"]] == [1]
    assert verification["state"] == "passed"
    # The user's tree was not touched.
    assert (project / "calc.py").read_text() == CALC
    assert run_git(project, "status", "--porcelain") == ""


def _ledger(root: Path, run_id: str) -> dict[str, Any]:
    from lsp_agent.config import workspace_cache_dir
    from lsp_agent.goals.store import RunStore
    from lsp_agent.tasks import TaskJournal

    journal = TaskJournal(workspace_cache_dir(root) / "tasks.sqlite")
    try:
        ledger = RunStore(journal).load(run_id)
        assert ledger is not None
        return ledger.to_json()
    finally:
        journal.close()


PYTEST = Check("pytest", ("python", "-m", "pytest"), "test", "pytest", selectable=True)
RUFF = Check("ruff", ("ruff", "check", "."), "lint", "ruff")
GO = Check("go test", ("go", "test", "./..."), "test")


def inside(path: str) -> str:
    if path.startswith("/") or ".." in path:
        raise ValueError(f"{path} is outside the workspace")
    return path


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("tests", "tests/test_a.py::test_x, tests/test_b.py", ("pytest", 2)),
        ("command", "pytest tests/test_a.py", ("pytest", 1)),
        ("command", "ruff", ("ruff", 0)),
        ("command", "ruff check .", ("ruff", 0)),  # its own command line
        ("command", "go test", ("go test", 0)),
    ],
)
def test_acceptance_names_a_project_check(kind: str, value: str, expected: tuple) -> None:
    found = resolve_acceptance(Acceptance(kind, value), [PYTEST, RUFF, GO], inside)
    assert found is not None
    check, tests = found
    assert (check.name, len(tests)) == expected


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("tests", "tests/test_a.py -x", "'-x' is not a test id"),
        ("tests", "tests/test_a.py;rm", "is not a test id"),
        ("tests", "/etc/passwd", "outside the workspace"),
        ("tests", "", "needs test ids"),
        ("command", "make test", r"not one of the project's checks \(pytest, ruff, go test\)"),
        ("command", "ruff --fix", "ruff takes no test selectors"),
        ("command", "pytest -k slow", "'-k' is not a test id"),
    ],
)
def test_acceptance_that_cannot_run_is_refused(kind: str, value: str, message: str) -> None:
    with pytest.raises(AcceptanceError, match=message):
        resolve_acceptance(Acceptance(kind, value), [PYTEST, RUFF, GO], inside)


def test_a_plan_whose_acceptance_cannot_run_goes_back_to_the_planner() -> None:
    def accept(acceptance: Acceptance) -> object:
        return resolve_acceptance(acceptance, [RUFF], inside)

    step = fix_step("s1")  # asks for test ids: no check here takes them
    with pytest.raises(PlanError, match="step s1: acceptance: no check here takes test ids"):
        validate_steps([step], accept=accept)
    criterion = dict(step, acceptance={"kind": "criterion", "value": "triple triples"})
    assert validate_steps([criterion], accept=accept)[0].acceptance.kind == "criterion"
    with pytest.raises(PlanError, match="no checks that can run"):
        validate_steps([step], accept=lambda a: resolve_acceptance(a, [], inside))
    assert "every step's acceptance is a criterion" in planner_note([], ["nothing detected"])
