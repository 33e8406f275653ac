"""Two tasks edit one file the editor does not have open: the second edit is planned against
the text the first one left in the editor (which has not saved it), never against disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsprotocol import types

from tests.server.conftest import make_workspace, server_env
from tests.server.lsp_helpers import apply_text_edits, start_server, stop_server
from tests.server.task_helpers import APPROVE, edits_for, wait_state
from tests.support.scripted_model import ScriptedModel

TEXT = "def first_value(x):\n    return x + 1\n\n\ndef second_value(x):\n    return x + 2\n"


def _rules(word: str) -> list[dict[str, Any]]:
    # Each rename adds a docstring line: the lines after it move, so an edit computed against
    # the original text would land one line off on the text the first edit left.
    block = (
        f"j.py\n<<<<<<< SEARCH\ndef {word}_value(x):\n=======\ndef {word}_renamed(x):\n"
        f'    """{word}."""\n>>>>>>> REPLACE\n'
    )
    plan = {
        "name": "submit_plan",
        "arguments": {"targets": [{"path": "j.py", "instructions": f"rename {word}"}]},
    }
    return [
        {
            "match": {"has_tool": "submit_plan", "contains": f"rename {word}_value"},
            "reply": {"tool_calls": [plan]},
        },
        {
            "match": {"contains": f"rename {word}_value", "last_contains": "# Target file: j.py"},
            "reply": {"content": block},
        },
    ]


async def test_second_task_on_an_unopened_file_builds_on_the_first(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", {"j.py": TEXT})
    with ScriptedModel([*_rules("first"), *_rules("second"), APPROVE]) as model:
        env = server_env(tmp_path, LSP_AGENT_BASE_URL=model.url, LSP_AGENT_MODEL="scripted")
        sut = await start_server(root, env=env)
        try:
            await sut.wait_for(lambda: "end" in sut.progress_kinds("lsp-agent/index"), "index")
            first = (await sut.run_task("j.py", instruction="rename first_value"))["taskId"]
            assert await wait_state(sut, first, {"applied"}) == "applied"
            # The test client, like an editor with the file unopened, holds the edit in memory
            # and neither saves it nor sends didOpen: disk still has the original text.
            assert (root / "j.py").read_text() == TEXT
            second = (await sut.run_task("j.py", instruction="rename second_value"))["taskId"]
            assert await wait_state(sut, second, {"applied"}) == "applied"
        finally:
            await stop_server(sut)
    edits = edits_for(sut, "j.py")
    assert len(edits) == 2
    assert all(e.text_document.version is None for e in edits)
    text = TEXT
    for edit in edits:  # what the client does: each edit on the text the previous one left
        assert isinstance(edit, types.TextDocumentEdit)
        text = apply_text_edits(text, edit.edits)
    assert text == TEXT.replace(
        "def first_value(x):", 'def first_renamed(x):\n    """first."""'
    ).replace("def second_value(x):", 'def second_renamed(x):\n    """second."""')
