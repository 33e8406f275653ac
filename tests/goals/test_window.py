"""A goal run sizes its snapshot by the window the model's server reports, as a task does."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from lsp_agent import cli
from lsp_agent.agents import sizing
from lsp_agent.config import Settings
from tests.goals.conftest import goal_cli
from tests.goals.support import GoalModel, chain
from tests.support.scripted_model import ScriptedModel


def test_a_local_servers_window_sizes_the_runs_snapshot(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ScriptedModel(hook=GoalModel(chain(1)), n_ctx=32_768) as model:
        monkeypatch.setenv("LSP_AGENT_BASE_URL", model.url)
        run = goal_cli(["Add one step", "--json"], repo, monkeypatch)
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert report["state"] == "succeeded", report["reason"]
    task_id = report["steps"][0]["taskId"]
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["tasks", "--manifest", task_id, "--json", "--root", str(repo)]) == 0
    budget = json.loads(out.getvalue())["budget"]
    reserve = Settings().context.reserve
    # Without the learned window the run was sized for the 128k preset's ceiling.
    assert budget == sizing.snapshot_budget(32_768, kind="goal", reserve=reserve)
