"""docs/protocol.md's example rules drive a real task: the example other engineers copy works."""

from __future__ import annotations

import json
import re
from pathlib import Path

from lsp_agent.agents.orchestrator import TaskSpec, run_task
from lsp_agent.config import Settings
from tests.agents.test_orchestrator import FakeSnapshot, make_client, make_workspace
from tests.support.scripted_model import ScriptedModel

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def example_rules() -> list[dict]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Scripted-model rules") :]
    body = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert body is not None, "the example rules block is missing from docs/protocol.md"
    return json.loads(body.group(1))


async def test_protocol_example_rules_run_a_full_task(tmp_path):
    index = make_workspace(tmp_path / "ws", {"calc.py": "def add(a, b):\n    return a + b\n"})
    with ScriptedModel(rules=example_rules()) as model:
        result = await run_task(
            TaskSpec(instruction="Rename add to plus", kind="refactor", files=["calc.py"]),
            index=index,
            snapshot=FakeSnapshot("calc.py: def add(a, b)"),
            client=make_client(model),
            settings=Settings(),
            transcript_dir=tmp_path / "t",
        )
        roles = [r.messages[2]["content"].splitlines()[0] for r in model.requests]
    assert result.state == "succeeded", result.error
    assert result.changes[0].new_text == "def plus(a, b):\n    return a + b\n"
    assert roles == ["# Role: researcher", "# Role: coder", "# Role: reviewer"]
