"""Pure parts of the worker: prompts and layout, the merge of coders' results, the validator, the
transcript's scrubbing, task records and the dry-run estimate."""

from __future__ import annotations

import json

import pytest

from lsp_agent.agents.coder import CoderResult
from lsp_agent.agents.merge import MergeConflict, merge, summary_for
from lsp_agent.agents.orchestrator import TaskResult, TaskSpec, plan_task, task_text
from lsp_agent.agents.roles import Plan, Target, base_messages, render
from lsp_agent.agents.transcript import REDACTED, Transcript, read_transcript, scrub
from lsp_agent.agents.usage import Usage
from lsp_agent.agents.validator import new_syntax_errors, syntax_problems
from lsp_agent.context.tokens import count_tokens
from lsp_agent.edits import EditBlock
from tests.agents.test_orchestrator import CALC, FakeSnapshot, make_workspace


def test_base_messages_hold_nothing_variable():
    first, second = base_messages("P"), base_messages("P")
    assert first == second and [m["role"] for m in first] == ["system", "user"]
    assert "# Role" not in first[0]["content"] and "t-" not in first[0]["content"]
    for role in ("researcher", "reviewer"):
        assert render(role).splitlines()[0] == f"# Role: {role}"
    assert render("coder", path="a/b.py").splitlines()[:2] == [
        "# Role: coder",
        "# Target file: a/b.py",
    ]


def coder_result(path: str, original: str, blocks: list[tuple[str, str]]) -> CoderResult:
    from lsp_agent.edits import apply_blocks

    edit_blocks = [EditBlock(path, s, r) for s, r in blocks]
    text = apply_blocks(original, edit_blocks) if edit_blocks else original
    return CoderResult(Target(path, "x"), original, text, True, edit_blocks)


def test_merge_keeps_every_change_and_drops_unchanged_files():
    a = coder_result("calc.py", CALC, [("def add(a, b):\n", "def plus(a, b):\n")])
    b = coder_result("calc.py", CALC, [("def sub(a, b):\n", "def minus(a, b):\n")])
    untouched = coder_result("other.py", "x = 1\n", [])
    [merged] = merge([a, b, untouched])
    assert merged.text == CALC.replace("def add", "def plus").replace("def sub", "def minus")
    assert len(merged.blocks) == 2 and merged.original == CALC


def test_merge_reports_overlapping_edits_as_a_conflict():
    a = coder_result("calc.py", CALC, [("def add(a, b):\n", "def plus(a, b):\n")])
    b = coder_result("calc.py", CALC, [("def add(a, b):\n", "def total(a, b):\n")])
    with pytest.raises(MergeConflict, match=r"calc\.py"):
        merge([a, b])


def test_title_and_summary_are_deterministic():
    a = coder_result("calc.py", CALC, [("def add(a, b):\n", "def plus(a, b):\n")])
    summary = summary_for(Plan([a.target], "notes here"), merge([a]))
    assert summary == "notes here\n- edit calc.py (+1 -1)"


def test_validator_counts_only_new_errors():
    assert syntax_problems("a.txt", "((") is None
    broken = "def f(:\n    pass\n"
    assert new_syntax_errors("a.py", CALC, broken)[0].line == 0
    assert new_syntax_errors("a.py", broken, broken + "\nx = 1\n") == []
    assert new_syntax_errors("a.py", broken, "y = 2\n" + broken) == []
    assert new_syntax_errors("a.js", "let a = 1;\n", "let a = ;\n")


def test_scrub_removes_keys_and_tokens():
    text = (
        "key sk-abcdefghijklmnop1234 auth Bearer abc.def-ghi_123456 "
        "hex 0123456789abcdef0123456789abcdef0123 api_key=zzzzyyyyxxxx1234 plain MYKEYVALUE"
    )
    out = scrub(text, ["MYKEYVALUE"])
    for secret in ("sk-abc", "abc.def-ghi", "0123456789abcdef0123", "zzzzyyyy", "MYKEYVALUE"):
        assert secret not in out
    assert out.count(REDACTED) == 5 and "Bearer " in out and "api_key=" in out
    for code in ("ordinary words and def f(x): return 1", "token = get_token()", "secret_key: str"):
        assert scrub(code) == code


def test_transcript_scrubs_env_keys_and_dedupes_the_prefix(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPSEEK_API_KEY", "dsk-live-12345678")
    from lsp_agent.agents.transcript import environment_secrets

    transcript = Transcript(tmp_path / "t.jsonl", secrets=environment_secrets())
    prefix = {"role": "user", "content": "P" * 5000}
    transcript.messages(
        "a", [prefix, {"role": "user", "content": "my key dsk-live-12345678"}], start=0
    )
    transcript.messages("b", [prefix], start=1)
    transcript.flush()
    raw = (tmp_path / "t.jsonl").read_text()
    assert "dsk-live-12345678" not in raw
    events = read_transcript(tmp_path / "t.jsonl")
    assert events[0]["message"]["content"] == "P" * 5000
    assert events[2]["message"]["content"].startswith("<same as content #")
    assert raw.count("P" * 5000) == 1


def test_task_text_and_json_round_trip():
    spec = TaskSpec(
        instruction="fix it",
        kind="fix",
        files=["a.py"],
        selection={"path": "a.py", "start_line": 2, "start_char": 0, "end_line": 4, "end_char": 0},
        diagnostics=[
            {
                "message": "undefined name 'x'",
                "range": {"start": {"line": 9, "character": 0}},
                "source": "ruff",
                "code": "F821",
                "path": "a.py",
            }
        ],
    )
    text = task_text(spec)
    assert "Kind: fix" in text and "Files: a.py" in text
    assert "Selection: a.py lines 3-5" in text
    assert "- a.py:10: ruff F821: undefined name 'x'" in text
    again = TaskSpec.from_json(json.loads(json.dumps(spec.to_json())))
    assert again.instruction == spec.instruction and again.diagnostics == spec.diagnostics
    assert task_text(again) == text
    from lsp_agent.context.model import Selection

    assert again.selection == Selection("a.py", 2, 0, 4, 0)
    result = TaskResult("failed", "t", "", [], Usage(prompt_tokens=3), "boom")
    assert TaskResult.from_json(json.loads(json.dumps(result.to_json()))).usage.prompt_tokens == 3


def test_plan_task_estimates_without_a_model(tmp_path):
    index = make_workspace(tmp_path / "ws", {"calc.py": CALC * 20})
    spec = TaskSpec(instruction="rename add", files=["calc.py"])
    plan = plan_task(spec, index=index, snapshot=FakeSnapshot("P " * 1000), count=len)
    assert plan.files == ["calc.py"] and plan.requests == 3
    assert set(plan.prompt_tokens) == {"researcher", "coder:calc.py", "reviewer"}
    assert plan.prompt_tokens["coder:calc.py"] > plan.prefix_tokens + len(CALC * 20)
    assert plan.prefix_tokens == 2000
    assert plan.to_json()["total_prompt_tokens"] == sum(plan.prompt_tokens.values())
    real = plan_task(spec, index=index, snapshot=FakeSnapshot("word " * 1000))
    assert 1000 <= real.prefix_tokens <= 1100  # the real tokenizer: about a token per word


async def test_the_dry_run_counts_what_the_first_requests_send(tmp_path, scripted):
    """plan_task counts each first request as the request sizer does (messages with their
    overhead, tool schemas), and a coder whose file the snapshot shows in full refers to that
    copy, so the estimate is not one whole file too high."""
    from lsp_agent.config import Settings
    from lsp_agent.context.snapshot import SnapshotBuilder
    from tests.agents.test_orchestrator import (
        block,
        coder_rule,
        make_client,
        plan_rule,
        review_rule,
    )

    body = "".join(f"def f{n}(a, b):\n    return a * {n} + b\n\n\n" for n in range(150))
    index = make_workspace(tmp_path / "ws", {"calc.py": body, "use.py": "from calc import f1\n"})
    settings = Settings()
    snapshot = SnapshotBuilder(index, settings.context, state_dir=None).build(
        budget=60_000, focus=["calc.py"]
    )
    assert "calc.py" in snapshot.shown_in_full  # the prefix carries it in full
    spec = TaskSpec(instruction="rename f1", kind="refactor", files=["calc.py"])
    plan = plan_task(spec, index=index, snapshot=snapshot)

    scripted.add_rule(plan_rule([{"path": "calc.py", "instructions": "x"}]))
    edit = block("calc.py", "def f1(a, b):\n", "def g1(a, b):\n")
    scripted.add_rule(coder_rule("calc.py", edit))
    scripted.add_rule(review_rule(True))
    client = make_client(scripted)
    from lsp_agent.agents.orchestrator import run_task

    result = await run_task(
        spec, index=index, snapshot=snapshot, client=client, settings=settings,
        transcript_dir=tmp_path / "t",
    )  # fmt: skip
    await client.aclose()
    assert result.state == "succeeded", result.error
    first = {}
    for record in result.requests:
        first.setdefault(record["role"], record["prompt_tokens"])
    assert first["researcher"] == plan.prompt_tokens["researcher"]  # the same request
    # The real coder message has the plan's notes and instructions ("n", "x"); the dry run none.
    assert abs(first["coder"] - plan.prompt_tokens["coder:calc.py"]) <= 8
    file_tokens = count_tokens(body)
    assert file_tokens > 2000  # counting the file again would be far off
    # The reviewer's real request also carries the plan and the diff: the estimate is below.
    assert plan.prompt_tokens["reviewer"] < first["reviewer"] < plan.prompt_tokens["reviewer"] + 300
