"""Secrets inside ordinary source files never reach the model, yet edits around them apply.

Full tasks through the real scripted HTTP server and the real OpenAIChatClient, with a real
index and a real snapshot (the secrets are in the prefix and the tail). Every request body the
server received is searched for the secrets; the scripted "model" answers with what it saw
(placeholders), like a real model copying lines into SEARCH/REPLACE.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from lsp_agent.agents.orchestrator import TaskSpec, run_task
from lsp_agent.agents.roles import PREFIX_HEADER
from lsp_agent.config import ContextSettings, Settings
from lsp_agent.context.snapshot import SnapshotBuilder
from lsp_agent.redact import PLACEHOLDER
from tests.agents.test_orchestrator import make_client, make_workspace, plan_rule, review_rule
from tests.support.scripted_model import ScriptedModel

OPENAI = "sk-proj-abcdefghijklmnopqrstuvwx12345"
AWS = "AKIAIOSFODNN7EXAMPLE"
BEARER = "tok0123456789abcdefXYZ"
SETTINGS = (
    '"""Service settings."""\n'
    f'OPENAI_API_KEY = "{OPENAI}"\n'
    f'AWS_ACCESS_KEY_ID = "{AWS}"\n'
    "TIMEOUT = 30\n"
)
TEST_API = (
    "from settings import TIMEOUT\n\n"
    f'HEADERS = {{"Authorization": "Bearer {BEARER}"}}\n\n\n'
    "def test_timeout():\n    assert TIMEOUT > 0\n"
)
# A grep hit longer than the tool's 300-character cut, with the AWS key across the cut: cutting
# first would leave "AKIAIOSFODNN", which no secret shape matches.
NOTES = "NOTE = '" + "word " * 56 + AWS + " end'\n"
# What must never appear in a request: the secrets, and the piece a careless cut would leave.
LEAKS = (OPENAI, AWS, BEARER, "AKIAIOSFOD", "abcdefghijklmnopqrstuvwx")


@pytest.fixture
def workspace(tmp_path):
    files = {"settings.py": SETTINGS, "tests/test_api.py": TEST_API, "notes.py": NOTES}
    index = make_workspace(tmp_path / "ws", files)
    snapshot = SnapshotBuilder(index, ContextSettings(), state_dir=None).build(
        budget=20_000, focus=["settings.py"]
    )
    # Preconditions, so the assertions below can fail: the real snapshot carries the secrets.
    # (the focus file is in full in the prefix, so the tail refers to it instead of copying it)
    assert OPENAI in snapshot.prefix and BEARER in snapshot.prefix
    assert "=== settings.py (focus file: shown in full" in snapshot.tail
    return index, snapshot


def placeholder_on(body: dict[str, Any], name: str) -> str:
    """The placeholder the model saw on the line assigning ``name`` (last message first)."""
    for message in reversed(body["messages"]):
        found = re.search(rf"{name} = \"({PLACEHOLDER.pattern})\"", str(message.get("content")))
        if found:
            return found.group(1)
    raise AssertionError(f"no redacted {name} line in the request")


def settings_block(body: dict[str, Any], old: str = "30", new: str = "60") -> str:
    key, aws = placeholder_on(body, "OPENAI_API_KEY"), placeholder_on(body, "AWS_ACCESS_KEY_ID")
    head = f'OPENAI_API_KEY = "{key}"\nAWS_ACCESS_KEY_ID = "{aws}"\n'
    return (
        f"settings.py\n<<<<<<< SEARCH\n{head}TIMEOUT = {old}\n=======\n"
        f"{head}TIMEOUT = {new}\n>>>>>>> REPLACE\n"
    )


def bodies(model: ScriptedModel) -> list[str]:
    return [json.dumps(r.body, ensure_ascii=False) for r in model.requests]


def assert_no_leak(model: ScriptedModel) -> None:
    assert model.requests and not model.errors, model.errors
    for number, body in enumerate(bodies(model)):
        for leak in LEAKS:
            assert leak not in body, f"request {number} holds {leak!r}"


def plan_from_tools(body: dict[str, Any]) -> dict[str, Any]:
    key = placeholder_on(body, "OPENAI_API_KEY")
    args = {
        "targets": [{"path": "settings.py", "instructions": f"Keep {key}; raise TIMEOUT to 60."}],
        "notes": f"OPENAI_API_KEY ({key}) stays as it is.",
    }
    return {"tool_calls": [{"name": "submit_plan", "arguments": args}]}


async def test_no_secret_reaches_any_role_and_edits_keep_the_real_values(
    workspace, scripted, tmp_path
):
    index, snapshot = workspace
    read = [
        {"name": "read_file", "arguments": {"path": "settings.py"}},
        {"name": "grep", "arguments": {"pattern": "Authorization"}},
        {"name": "grep", "arguments": {"pattern": "NOTE"}},
        {"name": "find_definitions", "arguments": {"name": "OPENAI_API_KEY"}},
    ]
    scripted.add_rule(
        {"match": {"has_tool": "submit_plan", "last_role": "user"}, "reply": {"tool_calls": read}}
    )
    scripted.add_rule({"match": {"has_tool": "submit_plan"}, "reply": plan_from_tools})
    # Coder: a SEARCH that misses (the applier's hint quotes the secret lines back), then the
    # placeholder lines copied from what it was shown; a review finding changes nothing.
    scripted.add_rule(
        {"match": {"last_contains": "# Review findings"}, "reply": {"content": "No change."}}
    )
    scripted.add_rule(
        {
            "match": {"last_contains": "# Edit not applied"},
            "reply": lambda body: {"content": settings_block(body)},
        }
    )
    scripted.add_rule(
        {
            "match": {"contains": "# Target file: settings.py"},
            "reply": lambda body: {"content": settings_block(body, old="31")},
        }
    )
    scripted.add_rule(
        review_rule(
            False,
            times=1,
            reply=lambda body: {
                "tool_calls": [
                    {
                        "name": "submit_review",
                        "arguments": {
                            "approved": False,
                            "findings": [
                                {
                                    "path": "settings.py",
                                    "message": "Is "
                                    + placeholder_on(body, "AWS_ACCESS_KEY_ID")
                                    + " still needed?",
                                }
                            ],
                        },
                    }
                ]
            },
        )
    )
    scripted.add_rule(review_rule(True))

    result = await run_task(
        TaskSpec(instruction="raise the timeout", files=["settings.py"]),
        index=index,
        snapshot=snapshot,
        client=make_client(scripted),
        settings=Settings(),
        transcript_dir=tmp_path / "transcripts",
        task_id="t-redact000001",
    )

    assert result.state == "succeeded", result.error
    # The edit applied against the real text and keeps the real secrets byte for byte.
    assert result.changes[0].new_text == SETTINGS.replace("TIMEOUT = 30", "TIMEOUT = 60")
    assert_no_leak(scripted)
    requests = scripted.requests
    roles = [r.messages[2]["content"].splitlines()[0] for r in requests]
    assert {"# Role: researcher", "# Role: coder", "# Role: reviewer"} <= set(roles)
    # Redaction happened where each secret would have been, not by luck of the rules.
    tool_results = [m["content"] for r in requests for m in r.messages if m["role"] == "tool"]
    by_start = {content.split(" ", 1)[0]: content for content in tool_results}
    assert PLACEHOLDER.search(by_start["settings.py"])  # read_file
    assert "Bearer «redacted:" in by_start["tests/test_api.py:3:"]  # grep
    assert by_start["notes.py:1:"].endswith("word ")  # cut before the placeholder, not inside it
    assert any(c.startswith("settings.py:2: constant") and "«redacted:" in c for c in tool_results)
    assert PLACEHOLDER.search(requests[0].messages[1]["content"])  # the prefix
    coder = next(r for r in requests if r.messages[2]["content"].startswith("# Role: coder"))
    assert "# Current content of settings.py" in coder.messages[2]["content"]
    # its current content is the prefix's copy (redacted there, see above), not a second copy
    current = coder.messages[2]["content"].split("# Current content")[1]
    assert "is the `=== settings.py ===` block shown in full above" in current
    assert (
        OPENAI not in coder.messages[1]["content"] and "«redacted:" in coder.messages[1]["content"]
    )
    assert "Keep «redacted:" in coder.messages[2]["content"]  # the plan, restored then redacted
    hint = next(r for r in requests if "# Edit not applied" in str(r.messages[-1]["content"]))
    assert 'OPENAI_API_KEY = "«redacted:' in hint.messages[-1]["content"]
    review = next(r for r in requests if r.messages[2]["content"].startswith("# Role: reviewer"))
    assert "# Combined diff" in review.messages[2]["content"]
    assert 'AWS_ACCESS_KEY_ID = "«redacted:' in review.messages[2]["content"]
    finding = next(r for r in requests if "# Review findings" in str(r.messages[-1]["content"]))
    assert "Is «redacted:" in finding.messages[-1]["content"]
    # Restored text that leaves the worker is scrubbed: summary (plan notes) and transcript.
    assert OPENAI not in result.summary and "[REDACTED]" in result.summary
    transcript = result.transcript.read_text(encoding="utf-8")
    assert all(leak not in transcript for leak in (OPENAI, AWS, BEARER))


async def test_prefix_message_is_byte_identical_across_tasks_and_roles(
    workspace, scripted, tmp_path
):
    index, snapshot = workspace
    scripted.add_rule(plan_rule([{"path": "settings.py", "instructions": "raise TIMEOUT"}]))
    scripted.add_rule(
        {
            "match": {"contains": "# Target file: settings.py"},
            "reply": lambda body: {"content": settings_block(body)},
        }
    )
    scripted.add_rule(review_rule(True))
    client = make_client(scripted)
    for n in range(2):
        result = await run_task(
            TaskSpec(instruction=f"task {n}"),
            index=index,
            snapshot=snapshot,
            client=client,
            settings=Settings(),
            transcript_dir=tmp_path / "t",
        )
        assert result.state == "succeeded", result.error
        assert OPENAI in result.changes[0].new_text

    requests = scripted.requests
    assert len(requests) == 6
    assert len({json.dumps(r.messages[:2]) for r in requests}) == 1
    prefix = requests[0].messages[1]["content"]
    assert prefix.startswith(PREFIX_HEADER) and prefix != PREFIX_HEADER + snapshot.prefix
    assert len(PLACEHOLDER.findall(prefix)) >= 3
    assert_no_leak(scripted)


async def test_an_invented_placeholder_is_refused_never_written(workspace, scripted, tmp_path):
    index, snapshot = workspace
    scripted.add_rule(plan_rule([{"path": "settings.py", "instructions": "raise TIMEOUT"}]))
    scripted.add_rule(
        {
            "match": {"last_contains": "# Edit not applied"},
            "reply": lambda body: {"content": settings_block(body)},
        }
    )
    bogus = "«redacted:0123456789abcdef»"
    invented = (
        f'settings.py\n<<<<<<< SEARCH\nTIMEOUT = 30\n=======\nTOKEN = "{bogus}"\n'
        "TIMEOUT = 60\n>>>>>>> REPLACE\n"
    )
    scripted.add_rule(
        {"match": {"contains": "# Target file: settings.py"}, "reply": {"content": invented}}
    )
    scripted.add_rule(review_rule(True))

    result = await run_task(
        TaskSpec(instruction="raise the timeout"),
        index=index,
        snapshot=snapshot,
        client=make_client(scripted),
        settings=Settings(),
        transcript_dir=tmp_path / "t",
    )

    assert result.state == "succeeded", result.error
    assert result.changes[0].new_text == SETTINGS.replace("TIMEOUT = 30", "TIMEOUT = 60")
    refusal = next(r for r in scripted.requests if "# Edit not applied" in str(r.messages[-1]))
    assert f"stand for nothing in this task: {bogus}" in refusal.messages[-1]["content"]
    assert_no_leak(scripted)
