"""`lsp-agent refactor --apply` on a task whose changes still break the project's tests: the files
stay untouched and the exit code is 1; `--apply-unverified` writes them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lsp_agent.config import user_config_path
from tests.agents.test_orchestrator import coder_rule, plan_rule, review_rule
from tests.batch.conftest import run_in_process
from tests.support.scripted_model import ScriptedModel
from tests.verify.conftest import needs_bwrap, tree_digest
from tests.verify.test_task_verification import BREAK, findings_rule

pytestmark = needs_bwrap


@pytest.fixture
def breaking_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedModel]:
    with ScriptedModel() as model:
        model.add_rule(plan_rule([{"path": "calc.py", "instructions": "rewrite add"}]))
        model.add_rule(coder_rule("calc.py", BREAK))
        model.add_rule(findings_rule([{"path": "calc.py", "message": "add subtracts"}]))
        model.add_rule(review_rule(True))
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        path = user_config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("[verify]\nrounds = 0\n")
        yield model


def test_apply_leaves_unverified_changes_out_and_exits_1(
    project: Path, breaking_model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree_digest(project)
    run = run_in_process(["refactor", "rewrite add", "calc.py", "--apply"], project, monkeypatch)
    assert run.code == 1, run.err
    assert tree_digest(project) == before
    listed = run_in_process(["tasks", "--json"], project, monkeypatch)
    [journaled] = (
        json.loads(listed.out)["tasks"] if "tasks" in listed.out else json.loads(listed.out)
    )
    assert journaled["state"] == "unverified"

    run = run_in_process(
        ["refactor", "rewrite add", "calc.py", "--apply-unverified", "--json"], project, monkeypatch
    )
    [task] = json.loads(run.out)["tasks"]
    assert task["state"] == "applied", run.err
    assert "return a - b" in (project / "calc.py").read_text()
    record = task["verification"]
    assert record["state"] == "failed"
    assert [r["new_failures"] for r in record["rounds"]] == [1]
    assert "tests/test_calc.py::test_add" in record["remaining"]
