"""Plans are checked against the task and the workspace before a coder starts (issues 11, 17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lsp_agent.agents.loop import ToolError
from lsp_agent.agents.plans import PlanChecker, validate_plan
from lsp_agent.agents.tools import Workspace
from lsp_agent.index.workspace import WorkspaceIndex
from tests.agents.test_orchestrator import (
    CALC,
    block,
    make_workspace,
    plan_rule,
    review_rule,
    run,
)


@pytest.fixture
def calc(tmp_path: Path) -> WorkspaceIndex:
    return make_workspace(tmp_path / "ws", {"calc.py": CALC, "README.md": "calc\n"})


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    files = {
        "shop/pricing.py": "TAX = 0.2\n",
        "shop/cart.py": "ITEMS = []\n",
        "README.md": "shop\n",
        "Makefile": "all:\n",
        ".lsp-agent.toml": "[model]\n",
    }
    index = make_workspace(tmp_path / "ws", files)
    (tmp_path / "ws" / ".git").mkdir()
    (tmp_path / "ws" / ".git" / "config").write_text("[core]\n")
    return Workspace(index)


def plan(*targets: dict[str, Any], notes: str = "n") -> dict[str, Any]:
    return {"targets": list(targets), "notes": notes}


def t(path: str, instructions: str = "change it", **extra: Any) -> dict[str, Any]:
    return {"path": path, "instructions": instructions, **extra}


@pytest.mark.parametrize(
    ("path", "words"),
    [
        (".lsp-agent.toml", "steers lsp-agent or git"),
        ("shop/.lsp-agent.toml", "steers lsp-agent or git"),
        (".git/config", "steers lsp-agent or git"),
        (".git/hooks/pre-commit", "steers lsp-agent or git"),
    ],
)
def test_files_that_steer_lsp_agent_or_git_are_never_targets(ws, path, words):
    for new in (False, True):
        with pytest.raises(ToolError, match=words):
            validate_plan(ws, plan(t(path, new=new)))


def test_a_typo_is_refused_with_the_nearest_names_not_created(ws):
    with pytest.raises(ToolError, match=r"shop/pricing\.pyy does not exist; did you mean") as err:
        validate_plan(ws, plan(t("shop/pricing.pyy")))
    assert "shop/pricing.py" in str(err.value) and '"new": true' in str(err.value)
    # Flagged new, the typo is still refused: nothing here ends in .pyy.
    for typo in ("shop/pricing.pyy", "shop/new.yp", "notes.mdd"):
        with pytest.raises(ToolError, match=r"no file in this project ends in \.\w+, but many"):
            validate_plan(ws, plan(t(typo, new=True)))


@pytest.mark.parametrize("junk", ["#$SHOP_TAX_PATH", "code:shop/pricing.py", ":{", "shop/a$b.py"])
def test_junk_names_never_become_files(ws, junk):
    with pytest.raises(ToolError):
        validate_plan(ws, plan(t(junk, new=True)))


def test_a_new_file_flagged_and_named_like_the_projects_files_is_accepted(ws):
    result = validate_plan(
        ws,
        plan(
            t("shop/discounts.py", new=True),
            t("docs/Makefile", new=True),
            t("scripts/run.sh", new=True),  # a first .sh is a new kind of file, not a typo
        ),
    )
    assert [(x.path, x.new) for x in result.targets] == [
        ("shop/discounts.py", True),
        ("docs/Makefile", True),
        ("scripts/run.sh", True),
    ]
    # "new" on a file that exists is ignored: it is edited, not created.
    [existing] = validate_plan(ws, plan(t("shop/cart.py", new=True))).targets
    assert existing.new is False


def test_duplicate_targets_are_merged_into_one(ws):
    result = validate_plan(
        ws,
        plan(
            t("shop/cart.py", "add a total"),
            t("./shop/cart.py", "add a count"),
            t("shop//cart.py", "add a total"),
        ),
    )
    [target] = result.targets
    assert target.path == "shop/cart.py" and target.instructions == "add a total\n\nadd a count"


@pytest.mark.parametrize("notes", ["", "1", "ok", "no change"])
def test_an_empty_plan_needs_a_reason(ws, notes):
    with pytest.raises(ToolError, match="notes must say why nothing needs to change"):
        validate_plan(ws, plan(notes=notes))
    assert validate_plan(ws, plan(notes="TAX is already 0.2 as asked")).targets == []


def test_leaving_out_the_tasks_own_file_is_warned_once_then_accepted(ws):
    checker = PlanChecker(ws, ["shop/pricing.py"])
    other = plan(t("shop/cart.py"))
    with pytest.raises(ToolError, match=r"the plan leaves out shop/pricing\.py, which the task"):
        checker(other)
    accepted = checker(other)  # the same plan again: confirmed
    assert accepted.warnings == ["the plan leaves out the task's own shop/pricing.py"]
    assert checker(plan(t("shop/pricing.py"))).warnings == []


async def test_the_warning_reaches_the_summary(tmp_path, scripted):
    index = make_workspace(tmp_path / "ws", {"calc.py": "X = 1\n", "other.py": "Y = 2\n"})
    scripted.add_rule(plan_rule([{"path": "other.py", "instructions": "set Y to 3"}]))
    scripted.add_rule(
        {"match": {"contains": "# Target file: other.py"}, "reply": {"content": block(
            "other.py", "Y = 2\n", "Y = 3\n"
        )}}
    )  # fmt: skip
    scripted.add_rule(review_rule(True))
    from lsp_agent.agents.orchestrator import TaskSpec, run_task
    from lsp_agent.config import Settings
    from tests.agents.test_orchestrator import FakeSnapshot, make_client

    result = await run_task(
        TaskSpec(instruction="change calc", kind="refactor", files=["calc.py"]),
        index=index,
        snapshot=FakeSnapshot("P"),
        client=make_client(scripted),
        settings=Settings(),
        transcript_dir=tmp_path / "t",
    )
    assert result.state == "succeeded", result.error
    assert "Warnings: the plan leaves out the task's own calc.py" in result.summary
    plans = [r for r in scripted.requests if "submit_plan" in r.tool_names]
    assert len(plans) == 2  # sent back once with the warning, then confirmed


async def test_an_empty_plan_with_a_reason_is_no_changes_with_that_reason(calc, scripted, tmp_path):
    scripted.add_rule(plan_rule([], notes="1", times=1))
    scripted.add_rule(plan_rule([], notes="add is already called plus everywhere"))
    result = await run(calc, scripted, tmp_path)
    assert result.state == "no_changes"
    assert result.summary == "no change needed: add is already called plus everywhere"


async def test_coders_that_decline_give_the_reason(calc, scripted, tmp_path):
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "rename add to plus"}]))
    scripted.add_rule(
        {
            "match": {"contains": "# Target file: calc.py"},
            "reply": {"content": "NO CHANGES NEEDED: plus already exists"},
        }
    )
    result = await run(calc, scripted, tmp_path)
    assert result.state == "no_changes", result.error
    assert result.summary.startswith("no change needed: calc.py:")
    assert "plus already exists" in result.summary
