"""Orchestration flows through the real scripted server: parallel coders, review rounds, retries
with hints, syntax checks, budgets, loop detection, refused paths, merges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lsp_agent.agents.transcript import read_transcript
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
from tests.support.scripted_model import ScriptedModel, max_overlap


@pytest.fixture
def calc(tmp_path: Path):
    return make_workspace(tmp_path / "ws", {"calc.py": CALC})


def tool_results(model: ScriptedModel) -> list[str]:
    """Every tool message the model was sent, in order, deduplicated across requests."""
    seen: dict[str, str] = {}
    for request in model.requests:
        for message in request.messages:
            if message["role"] == "tool":
                seen.setdefault(message["tool_call_id"], message["content"])
    return list(seen.values())


async def test_coders_run_in_parallel_across_files(tmp_path, scripted):
    files = {f"m{i}.py": f"def f{i}():\n    return {i}\n" for i in range(4)}
    index = make_workspace(tmp_path / "ws", files)
    scripted.add_rule(plan_rule([{"path": p, "instructions": "return twice"} for p in files]))
    for i, path in enumerate(files):
        edit = block(path, f"    return {i}\n", f"    return {i} * 2\n")
        scripted.add_rule(coder_rule(path, edit, delay_ms=300))
    scripted.add_rule(review_rule(True))

    result = await run(index, scripted, tmp_path)

    assert result.state == "succeeded", result.error
    assert sorted(c.path for c in result.changes) == sorted(files)
    coders = [r for r in scripted.requests if "# Role: coder" in r.messages[2]["content"]]
    assert len(coders) == 4
    assert max_overlap(coders) == 4  # all four coder requests were in flight together


async def test_reviewer_rejects_then_coder_fixes_then_approves(calc, scripted, tmp_path):
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "rename add to plus"}]))
    fix = block("calc.py", "def sub(a, b):\n", "def minus(a, b):\n")
    scripted.add_rule(
        {"match": {"last_contains": "# Review findings for calc.py"}, "reply": {"content": fix}}
    )
    scripted.add_rule(
        coder_rule("calc.py", block("calc.py", "def add(a, b):\n", "def plus(a, b):\n"))
    )
    finding = {"path": "calc.py", "message": "also rename sub to minus"}
    scripted.add_rule(review_rule(False, [finding], times=1))
    scripted.add_rule(review_rule(True))

    result = await run(calc, scripted, tmp_path)

    assert result.state == "succeeded", result.error
    expected = CALC.replace("def add", "def plus").replace("def sub", "def minus")
    assert result.changes[0].new_text == expected
    reviews = [r for r in scripted.requests if "submit_review" in r.tool_names]
    assert len(reviews) == 2
    feedback = next(r for r in scripted.requests if "# Review findings" in str(r.messages[-1]))
    assert "- also rename sub to minus" in feedback.messages[-1]["content"]
    assert "def plus(a, b):" in feedback.messages[-1]["content"]  # the current text, revised
    revised = next(m for m in reviews[-1].messages if "# Revised diff" in str(m.get("content")))
    assert "+def minus(a, b):" in revised["content"]


async def test_review_rounds_exhausted_is_budget_exceeded(calc, scripted, tmp_path):
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "x"}]))
    scripted.add_rule(
        {"match": {"last_contains": "# Review findings"}, "reply": {"content": "I disagree."}}
    )
    scripted.add_rule(
        coder_rule("calc.py", block("calc.py", "def add(a, b):\n", "def plus(a, b):\n"))
    )
    scripted.add_rule(review_rule(False, [{"path": "calc.py", "message": "wrong name"}]))

    result = await run(calc, scripted, tmp_path, settings=settings_with(review_rounds=1))

    assert result.state == "budget_exceeded"
    assert "reviewer still rejects" in result.error and "wrong name" in result.error
    assert result.changes == []


async def test_apply_error_goes_back_with_hint_then_succeeds(calc, scripted, tmp_path):
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "x"}]))
    good = block("calc.py", "def add(a, b):\n", "def plus(a, b):\n")
    scripted.add_rule(
        {"match": {"last_contains": "# Edit not applied"}, "reply": {"content": good}}
    )
    bad = block("calc.py", "def ad(a, b, c):\n", "def plus(a, b):\n")
    scripted.add_rule(coder_rule("calc.py", bad))
    scripted.add_rule(review_rule(True))

    result = await run(calc, scripted, tmp_path)

    assert result.state == "succeeded", result.error
    assert result.changes[0].new_text.startswith("def plus(a, b):")
    retry = next(r for r in scripted.requests if "# Edit not applied" in str(r.messages[-1]))
    feedback = retry.messages[-1]["content"]
    assert "def add(a, b):" in feedback  # the applier's closest-lines hint
    events = read_transcript(result.transcript)
    assert [e["event"] for e in events].count("rejected") == 1


async def test_apply_rounds_exhausted(calc, scripted, tmp_path):
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "x"}]))
    scripted.add_rule(coder_rule("calc.py", block("calc.py", "nothing like it\n", "x\n")))

    result = await run(calc, scripted, tmp_path, settings=settings_with(apply_rounds=2))

    assert result.state == "budget_exceeded"
    assert "calc.py" in result.error and result.changes == []
    coders = [r for r in scripted.requests if "# Role: coder" in r.messages[2]["content"]]
    assert len(coders) == 3  # the first attempt and two rounds of feedback


async def test_new_syntax_error_sends_the_coder_back(calc, scripted, tmp_path):
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "x"}]))
    good = block("calc.py", "def add(a, b):\n", "def plus(a, b):\n")
    scripted.add_rule(
        {"match": {"last_contains": "introduces syntax errors"}, "reply": {"content": good}}
    )
    scripted.add_rule(
        coder_rule("calc.py", block("calc.py", "def add(a, b):\n", "def plus(a, b:\n"))
    )
    scripted.add_rule(review_rule(True))

    result = await run(calc, scripted, tmp_path)

    assert result.state == "succeeded", result.error
    assert result.changes[0].new_text == CALC.replace("def add", "def plus")
    feedback = [str(r.messages[-1]["content"]) for r in scripted.requests]
    assert any("line 1" in f and "def plus(a, b:" in f for f in feedback)


async def test_step_budget_exhausted(calc, scripted, tmp_path):
    # A new call each step: progress, so only the step cap stops it.
    patterns = iter(range(100))
    scripted.add_rule(
        {
            "match": {"has_tool": "submit_plan"},
            "reply": lambda body: {
                "tool_calls": [{"name": "grep", "arguments": {"pattern": f"p{next(patterns)}"}}]
            },
        }
    )
    result = await run(calc, scripted, tmp_path, settings=settings_with(max_steps=3))
    assert result.state == "budget_exceeded"
    assert "3 steps" in result.error and result.changes == []
    assert len(scripted.requests) == 3


async def test_token_budget_exhausted(calc, scripted, tmp_path):
    scripted.add_rule(
        {
            "match": {"has_tool": "submit_plan"},
            "reply": {
                "tool_calls": [{"name": "list_files", "arguments": {}}],
                "usage": {"prompt_tokens": 600, "completion_tokens": 10},
            },
        }
    )
    result = await run(calc, scripted, tmp_path, settings=settings_with(max_tokens=1000))
    assert result.state == "budget_exceeded"
    assert "token budget" in result.error
    assert len(scripted.requests) == 2 and result.usage.total_tokens == 1220


async def test_same_failing_tool_call_three_times_is_a_loop(calc, scripted, tmp_path):
    scripted.add_rule(
        {
            "match": {"has_tool": "submit_plan"},
            "reply": {"tool_calls": [{"name": "read_file", "arguments": {"path": "nope.py"}}]},
        }
    )
    result = await run(calc, scripted, tmp_path)
    assert result.state == "failed"
    assert result.error.startswith("stopped early") and "nope.py" in result.error
    assert len(scripted.requests) == 3


async def test_secret_file_and_outside_path_are_refused(tmp_path, scripted):
    secret_value = "hunter2-super-secret"
    index = make_workspace(
        tmp_path / "ws", {"app.py": "KEY = None\n", ".env": f"PASSWORD={secret_value}\n"}
    )
    (tmp_path / "outside.py").write_text("x = 1\n")
    calls = [
        {"name": "read_file", "arguments": {"path": ".env"}},
        {"name": "read_file", "arguments": {"path": "../outside.py"}},
        {"name": "grep", "arguments": {"pattern": "PASSWORD"}},
        {"name": "list_files", "arguments": {}},
    ]
    scripted.add_rule(
        {"match": {"has_tool": "submit_plan", "last_role": "user"}, "reply": {"tool_calls": calls}}
    )
    bad_plan = {"targets": [{"path": "/etc/passwd", "instructions": "x"}], "notes": ""}
    scripted.add_rule(
        {
            "match": {"has_tool": "submit_plan", "last_contains": "app.py"},
            "reply": {"tool_calls": [{"name": "submit_plan", "arguments": bad_plan}]},
            "times": 1,
        }
    )
    scripted.add_rule(plan_rule([]))

    result = await run(index, scripted, tmp_path)

    assert result.state == "no_changes"
    results = tool_results(scripted)
    assert results[0].startswith("error:") and "secret" in results[0]
    assert results[1].startswith("error:") and "outside the workspace" in results[1]
    assert results[2] == "no matches for 'PASSWORD'"
    assert ".env" not in results[3].split("\n") and "app.py" in results[3]
    assert results[4].startswith("error:") and "outside the workspace" in results[4]
    everything = json.dumps([r.body for r in scripted.requests])
    assert secret_value not in everything
    assert secret_value not in result.transcript.read_text()


def own_instructions(text: str) -> dict[str, str]:
    return {"contains": f"# Your instructions for calc.py\n\n{text}"}


async def test_two_targets_for_one_file_become_one_coder(calc, scripted, tmp_path):
    # Two coders on one file at once raced each other (issue 17): the plan merges them.
    targets = [
        {"path": "calc.py", "instructions": "rename add"},
        {"path": "./calc.py", "instructions": "rename sub"},
    ]
    scripted.add_rule(plan_rule(targets))
    both = block("calc.py", "def add(a, b):\n", "def plus(a, b):\n") + block(
        "calc.py", "def sub(a, b):\n", "def minus(a, b):\n"
    )
    scripted.add_rule(
        {"match": own_instructions("rename add\n\nrename sub"), "reply": {"content": both}}
    )
    scripted.add_rule(review_rule(True))

    result = await run(calc, scripted, tmp_path)

    assert result.state == "succeeded", result.error
    [change] = result.changes
    assert change.new_text == CALC.replace("def add", "def plus").replace("def sub", "def minus")
    coder_requests = [r for r in scripted.requests if not r.tool_names]
    assert len(coder_requests) == 1


async def test_new_file_target_is_reported_as_created(calc, scripted, tmp_path):
    scripted.add_rule(plan_rule([{"path": "pkg/new.py", "instructions": "create", "new": True}]))
    scripted.add_rule(coder_rule("pkg/new.py", block("pkg/new.py", "", "VALUE = 1\n")))
    scripted.add_rule(review_rule(True))

    result = await run(calc, scripted, tmp_path)

    assert result.state == "succeeded", result.error
    [change] = result.changes
    assert change.created and change.original_text == "" and change.new_text == "VALUE = 1\n"


async def test_wall_clock_budget_stops_a_slow_task(calc, scripted, tmp_path):
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "x"}]))
    scripted.add_rule(coder_rule("calc.py", "no change", delay_ms=3000))

    result = await run(calc, scripted, tmp_path, settings=settings_with(max_seconds=0.5))

    assert result.state == "budget_exceeded"
    assert result.error == "time budget exhausted: 0.5 s" and result.changes == []
    events = read_transcript(result.transcript)
    assert events[-1]["event"] == "progress" and events[-1]["stage"] == "done"
    assert any(e["event"] == "result" and e["state"] == "budget_exceeded" for e in events)


async def test_finding_for_an_unplanned_file_gets_its_own_coder(tmp_path, scripted):
    index = make_workspace(tmp_path / "ws", {"calc.py": CALC, "use.py": "from calc import add\n"})
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "rename add to plus"}]))
    scripted.add_rule(
        coder_rule("use.py", block("use.py", "from calc import add\n", "from calc import plus\n"))
    )
    scripted.add_rule(
        coder_rule("calc.py", block("calc.py", "def add(a, b):\n", "def plus(a, b):\n"))
    )
    finding = {"path": "use.py", "message": "use.py still imports add"}
    scripted.add_rule(review_rule(False, [finding], times=1))
    scripted.add_rule(review_rule(True))

    result = await run(index, scripted, tmp_path)

    assert result.state == "succeeded", result.error
    by_path = {c.path: c.new_text for c in result.changes}
    assert by_path == {
        "calc.py": CALC.replace("def add", "def plus"),
        "use.py": "from calc import plus\n",
    }
    new_coder = next(r for r in scripted.requests if "# Target file: use.py" in str(r.messages[2]))
    assert "use.py still imports add" in new_coder.messages[2]["content"]
    # The calc.py coder was not asked to revise anything.
    assert not any("# Review findings" in str(r.messages[-1]) for r in scripted.requests)


async def test_finding_without_a_path_goes_to_every_coder(tmp_path, scripted):
    index = make_workspace(tmp_path / "ws", {"a.py": "x = 1\n", "b.py": "y = 2\n"})
    scripted.add_rule(plan_rule([{"path": p, "instructions": "x"} for p in ("a.py", "b.py")]))
    scripted.add_rule(
        {"match": {"last_contains": "# Review findings"}, "reply": {"content": "Nothing to add."}}
    )
    scripted.add_rule(coder_rule("a.py", block("a.py", "x = 1\n", "x = 10\n")))
    scripted.add_rule(coder_rule("b.py", block("b.py", "y = 2\n", "y = 20\n")))
    scripted.add_rule(review_rule(False, [{"path": "", "message": "add comments"}], times=1))
    scripted.add_rule(review_rule(True))

    result = await run(index, scripted, tmp_path)

    assert result.state == "succeeded", result.error
    revisions = [r for r in scripted.requests if "# Review findings" in str(r.messages[-1])]
    assert sorted(r.messages[-1]["content"].splitlines()[0] for r in revisions) == [
        "# Review findings for a.py",
        "# Review findings for b.py",
    ]
    assert all("- add comments" in r.messages[-1]["content"] for r in revisions)


async def test_api_key_and_tokens_never_reach_the_transcript(calc, scripted, tmp_path, monkeypatch):
    from lsp_agent.agents.client import OpenAIChatClient
    from lsp_agent.agents.orchestrator import TaskSpec, run_task
    from lsp_agent.agents.providers import resolve_provider
    from lsp_agent.config import ModelSettings, Settings
    from tests.agents.test_orchestrator import FakeSnapshot

    key = "local-key-7f3a9c1e5b"
    settings = Settings(model=ModelSettings(provider="local", base_url=scripted.url, model="m"))
    client = OpenAIChatClient(resolve_provider(settings, env={"LSP_AGENT_API_KEY": key}))
    leak = f"my key is {key}, header Bearer abcdefghijklmnop, other sk-proj-0123456789abcdef"
    scripted.add_rule(
        {
            "match": {"has_tool": "submit_plan"},
            "reply": {
                "content": leak,
                "tool_calls": [
                    {"name": "submit_plan", "arguments": {"targets": [], "notes": leak}}
                ],
            },
        }
    )
    result = await run_task(
        TaskSpec(instruction=f"do not leak {key}"),
        index=calc,
        snapshot=FakeSnapshot("prefix"),
        client=client,
        settings=Settings(),
        transcript_dir=tmp_path / "t",
    )
    assert result.state == "no_changes"
    raw = result.transcript.read_text()
    for secret in (key, "abcdefghijklmnop", "sk-proj-0123456789abcdef"):
        assert secret not in raw
    assert raw.count("[REDACTED]") >= 4


async def test_cut_off_coder_answer_is_never_applied(calc, scripted, tmp_path):
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "x"}]))
    good = block("calc.py", "def add(a, b):\n", "def plus(a, b):\n")
    scripted.add_rule({"match": {"last_contains": "cut off"}, "reply": {"content": good}})
    half = block("calc.py", "def sub(a, b):\n", "def minus(a, b):\n")
    scripted.add_rule(
        coder_rule("calc.py", half, reply={"content": half, "finish_reason": "length"})
    )
    scripted.add_rule(review_rule(True))

    result = await run(calc, scripted, tmp_path)

    assert result.state == "succeeded", result.error
    assert result.changes[0].new_text == CALC.replace("def add", "def plus")  # sub untouched


async def test_frozen_buffer_texts_override_disk_and_reasoning_never_becomes_an_edit(
    calc, scripted, tmp_path
):
    from lsp_agent.agents.orchestrator import TaskSpec, run_task
    from tests.agents.test_orchestrator import FakeSnapshot, make_client

    buffer = CALC.replace("return a + b", "return b + a")  # unsaved editor text
    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "x"}]))
    thought = block("calc.py", "def sub(a, b):\n", "def minus(a, b):\n")
    edit = block("calc.py", "    return b + a\n", "    return a + b  # sum\n")
    scripted.add_rule(
        coder_rule("calc.py", edit, reply={"content": edit, "reasoning_content": thought})
    )
    scripted.add_rule(review_rule(True))

    result = await run_task(
        TaskSpec(instruction="x"),
        index=calc,
        snapshot=FakeSnapshot("p"),
        client=make_client(scripted),
        settings=settings_with(),
        transcript_dir=tmp_path / "t",
        texts={"calc.py": buffer},
    )

    assert result.state == "succeeded", result.error
    [change] = result.changes
    assert change.original_text == buffer
    assert change.new_text == buffer.replace("return b + a", "return a + b  # sum")
    assert "def sub(a, b):" in change.new_text  # the reasoning's block was not applied
