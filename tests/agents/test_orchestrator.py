"""End-to-end orchestration through the real scripted HTTP server and the real OpenAIChatClient.

The helpers at the top (workspace, client, rules) are shared by the other test_orchestrator_*
modules, which import them from here.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.agents.client import OpenAIChatClient
from lsp_agent.agents.orchestrator import ProgressEvent, TaskResult, TaskSpec, run_task
from lsp_agent.agents.providers import resolve_provider
from lsp_agent.agents.roles import PREFIX_HEADER
from lsp_agent.agents.transcript import read_transcript
from lsp_agent.config import BudgetSettings, ModelSettings, Settings
from lsp_agent.edits import apply_text_edits
from lsp_agent.index.workspace import WorkspaceIndex
from tests.support.scripted_model import ScriptedModel

CALC = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"


@dataclass
class FakeSnapshot:
    """The three fields run_task reads; the context engineer's builder makes the real one."""

    prefix: str
    tail: str = ""
    prefix_hash: str = "p0"


def make_workspace(root: Path, files: dict[str, str]) -> WorkspaceIndex:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    index = WorkspaceIndex(root, cache_path=None)
    index.build(jobs=1)
    return index


def make_client(model: ScriptedModel, *, max_retries: int = 2) -> OpenAIChatClient:
    settings = Settings(model=ModelSettings(provider="local", base_url=model.url, model="m"))
    return OpenAIChatClient(
        resolve_provider(settings, env={}),
        max_retries=max_retries,
        backoff_base=0.01,
        backoff_max=0.05,
        retry_after_max=0.05,
        timeout=10,
    )


def plan_rule(targets: list[dict[str, Any]], notes: str = "", **extra: Any) -> dict[str, Any]:
    # An empty plan must say why (plans.py); other plans may have any notes.
    notes = notes or ("n" if targets else "nothing needs to change for this task")
    args = {"targets": targets, "notes": notes}
    return {
        "match": {"has_tool": "submit_plan"},
        "reply": {"tool_calls": [{"name": "submit_plan", "arguments": args}]},
        **extra,
    }


def coder_rule(path: str, blocks: str, **extra: Any) -> dict[str, Any]:
    return {"match": {"contains": f"# Target file: {path}"}, "reply": {"content": blocks}, **extra}


def review_rule(approved: bool = True, findings: list[dict[str, str]] | None = None, **extra: Any):
    args = {"approved": approved, "findings": findings or []}
    return {
        "match": {"has_tool": "submit_review"},
        "reply": {"tool_calls": [{"name": "submit_review", "arguments": args}]},
        **extra,
    }


def block(path: str, search: str, replace: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def settings_with(**budgets: Any) -> Settings:
    return Settings(budgets=replace(BudgetSettings(), **budgets))


async def run(
    index: WorkspaceIndex,
    model: ScriptedModel,
    tmp_path: Path,
    instruction: str = "rename add to plus",
    *,
    settings: Settings | None = None,
    events: list[ProgressEvent] | None = None,
    prefix: str = "PREFIX: calc.py defines add and sub.",
    **kwargs: Any,
) -> TaskResult:
    return await run_task(
        TaskSpec(instruction=instruction, kind="refactor"),
        index=index,
        snapshot=FakeSnapshot(prefix),
        client=make_client(model, **kwargs),
        settings=settings or Settings(),
        progress=events.append if events is not None else None,
        transcript_dir=tmp_path / "transcripts",
        task_id="t-000000000001",
    )


@pytest.fixture
def calc(tmp_path: Path) -> WorkspaceIndex:
    return make_workspace(tmp_path / "ws", {"calc.py": CALC, "README.md": "calc\n"})


async def test_one_file_task_end_to_end(calc, scripted, tmp_path):
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "rename add to plus"}]))
    scripted.add_rule(
        coder_rule("calc.py", block("calc.py", "def add(a, b):\n", "def plus(a, b):\n"))
    )
    scripted.add_rule(review_rule(True))
    events: list[ProgressEvent] = []

    result = await run(calc, scripted, tmp_path, events=events)

    assert result.state == "succeeded", result.error
    [change] = result.changes
    assert change.path == "calc.py"
    assert change.new_text == CALC.replace("def add", "def plus")
    assert change.original_text == CALC and not change.created
    assert apply_text_edits(CALC, change.edits) == change.new_text
    assert "-def add(a, b):" in change.diff and "+def plus(a, b):" in change.diff
    assert events[0].stage == "researching"
    assert {"coding", "reviewing", "merging"} <= {e.stage for e in events}
    assert events[-1].stage == "done"
    assert result.usage.requests == 3 and result.usage.prompt_tokens > 0
    # Progress carries the usage so far: clients show tokens while the task runs.
    coding = next(e for e in events if e.stage == "coding")
    assert coding.usage is not None and coding.usage.requests == 1  # the researcher's
    assert events[-1].usage == result.usage
    lines = read_transcript(result.transcript)
    assert lines[0]["event"] == "task" and lines[-1]["event"] in ("result", "progress")
    assert any(e["event"] == "review" and e["approved"] for e in lines)
    # The result survives the journal's JSON round trip.
    again = TaskResult.from_json(json.loads(json.dumps(result.to_json())))
    assert again.changes[0].edits == change.edits and again.state == "succeeded"


async def test_prefix_messages_byte_identical_across_roles_and_requests(calc, scripted, tmp_path):
    scripted.add_rule(
        plan_rule([{"path": "calc.py", "instructions": "x"}]),
    )
    scripted.add_rule(
        {
            "match": {"has_tool": "read_file", "last_role": "user"},
            "reply": {"tool_calls": [{"name": "read_file", "arguments": {"path": "calc.py"}}]},
            "times": 1,
        },
        first=True,
    )
    scripted.add_rule(
        coder_rule("calc.py", block("calc.py", "def sub(a, b):\n", "def minus(a, b):\n"))
    )
    scripted.add_rule(review_rule(True))

    result = await run(calc, scripted, tmp_path)

    assert result.state == "succeeded", result.error
    requests = scripted.requests
    assert len(requests) == 4  # researcher x2, coder, reviewer
    heads = {json.dumps(r.messages[:2], sort_keys=True) for r in requests}
    assert len(heads) == 1
    assert (
        requests[0].messages[1]["content"] == PREFIX_HEADER + "PREFIX: calc.py defines add and sub."
    )
    roles = [r.messages[2]["content"].splitlines()[0] for r in requests]
    assert roles == ["# Role: researcher"] * 2 + ["# Role: coder", "# Role: reviewer"]
    # The researcher's second request extends its first: the cache keeps hitting.
    assert requests[1].messages[: len(requests[0].messages)] == requests[0].messages
    assert (
        requests[1].messages[-1]["role"] == "tool"
        and "def add" in requests[1].messages[-1]["content"]
    )


async def test_cancellation_mid_task_leaves_no_changes(calc, scripted, tmp_path):
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "x"}]))
    scripted.add_rule(coder_rule("calc.py", "no change", delay_ms=5000))
    events: list[ProgressEvent] = []
    task = asyncio.create_task(run(calc, scripted, tmp_path, events=events))
    while not any(e.stage == "coding" for e in events):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    lines = read_transcript(tmp_path / "transcripts" / "t-000000000001.jsonl")
    assert lines[-1]["event"] == "cancelled"
    assert not any(e["event"] == "result" for e in lines)


async def test_real_snapshot_prefix_is_shared_by_every_request_of_two_tasks(
    calc, scripted, tmp_path
):
    from lsp_agent.config import ContextSettings
    from lsp_agent.context.snapshot import SnapshotBuilder

    snapshot = SnapshotBuilder(calc, ContextSettings(), state_dir=None).build(
        budget=20_000, focus=["calc.py"]
    )
    assert "def add" in snapshot.prefix + snapshot.tail
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "x"}]))
    scripted.add_rule(
        coder_rule("calc.py", block("calc.py", "def add(a, b):\n", "def plus(a, b):\n"))
    )
    scripted.add_rule(review_rule(True))
    client = make_client(scripted)
    for n in range(2):
        result = await run_task(
            TaskSpec(instruction=f"task {n}"),
            index=calc,
            snapshot=snapshot,
            client=client,
            settings=Settings(),
            transcript_dir=tmp_path / "t",
        )
        assert result.state == "succeeded", result.error

    requests = scripted.requests
    assert len(requests) == 6
    assert len({json.dumps(r.messages[:2]) for r in requests}) == 1
    assert requests[0].messages[1]["content"] == PREFIX_HEADER + snapshot.prefix
    # The scripted server simulates a provider prefix cache: after the first request, every
    # request hits at least the two leading messages.
    head = len(json.dumps(requests[0].messages[:2])) // 4
    cached = [r.usage.get("prompt_cache_hit_tokens", 0) for r in requests[1:]]
    assert min(cached) >= (head // 64) * 64 - 64 and min(cached) > 0
