"""Replies without blocks, through the real coder path: scripted model server -> coder.

A reply with code but no blocks goes back as a format error within the apply rounds; only the
NO CHANGES NEEDED line declines a file.
"""

from __future__ import annotations

from pathlib import Path

from lsp_agent.index.workspace import WorkspaceIndex
from tests.agents.test_orchestrator import (
    CALC,
    block,
    coder_rule,
    make_workspace,
    plan_rule,
    review_rule,
    run,
    settings_with,
)
from tests.support.scripted_model import ScriptedModel

RENAME = block("calc.py", "def add(a, b):\n", "def plus(a, b):\n")


def workspace(tmp_path: Path) -> WorkspaceIndex:
    return make_workspace(tmp_path / "ws", {"calc.py": CALC})


def script(model: ScriptedModel, first: str, retry: str | None = None) -> None:
    model.add_rule(plan_rule([{"path": "calc.py", "instructions": "rename add to plus"}]))
    if retry is not None:
        model.add_rule(
            {"match": {"last_contains": "# Edit not applied"}, "reply": {"content": retry}}
        )
    model.add_rule(coder_rule("calc.py", first))
    model.add_rule(review_rule(True))


def feedback(model: ScriptedModel) -> list[str]:
    """The refusals the coder was sent, in order."""
    out = []
    for request in model.requests:
        last = request.messages[-1]
        if last["role"] == "user" and str(last["content"]).startswith("# Edit not applied"):
            out.append(str(last["content"]))
    return out


async def test_prose_without_blocks_is_sent_back_and_the_retry_applies(tmp_path, scripted):
    script(scripted, "I renamed add to plus in calc.py.", retry=RENAME)
    result = await run(workspace(tmp_path), scripted, tmp_path)
    assert result.state == "succeeded", result.error
    assert "def plus(a, b):" in result.changes[0].new_text
    [sent] = feedback(scripted)
    assert "no SEARCH/REPLACE block" in sent and "NO CHANGES NEEDED" in sent


async def test_a_whole_file_in_a_fence_is_a_format_error_not_no_changes(tmp_path, scripted):
    echo = "Here is the updated file:\n\n```python\n" + CALC.replace("add", "plus") + "```\n"
    script(scripted, echo, retry=RENAME)
    result = await run(workspace(tmp_path), scripted, tmp_path)
    assert result.state == "succeeded", result.error
    [sent] = feedback(scripted)
    assert "code in a fence" in sent


async def test_an_empty_reply_is_a_format_error(tmp_path, scripted):
    script(scripted, "", retry=RENAME)
    result = await run(workspace(tmp_path), scripted, tmp_path)
    assert result.state == "succeeded", result.error
    [sent] = feedback(scripted)
    assert "Your reply was empty" in sent


async def test_no_changes_needed_declines_the_file(tmp_path, scripted):
    script(scripted, "**NO CHANGES NEEDED**: calc.py already has plus.")
    result = await run(workspace(tmp_path), scripted, tmp_path)
    assert result.state == "no_changes", result.error
    assert feedback(scripted) == []


async def test_blocks_and_the_decline_line_together_are_refused(tmp_path, scripted):
    script(scripted, RENAME + "\nNO CHANGES NEEDED\n", retry=RENAME)
    result = await run(workspace(tmp_path), scripted, tmp_path)
    assert result.state == "succeeded", result.error
    [sent] = feedback(scripted)
    assert "either" in sent


async def test_format_errors_count_against_the_apply_rounds(tmp_path, scripted):
    script(scripted, "Done.", retry="Still done, trust me.")
    result = await run(
        workspace(tmp_path), scripted, tmp_path, settings=settings_with(apply_rounds=2)
    )
    assert result.state == "budget_exceeded"
    assert "no SEARCH/REPLACE block" in (result.error or "")
    assert len(feedback(scripted)) == 2
    assert result.changes == []


def test_the_decline_words_inside_a_block_are_content_not_a_decline() -> None:
    from lsp_agent.edits import decline_reason

    reply = "notes.txt\n<<<<<<< SEARCH\nTODO\n=======\nNO CHANGES NEEDED\n>>>>>>> REPLACE\n"
    assert decline_reason(reply) is None
    assert decline_reason("NO CHANGES NEEDED: done already\n") == "done already"
