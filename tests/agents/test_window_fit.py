"""Every request fits its window, reply included: each preset window (128k, 256k, 1M) x each role
(researcher, coders and reviewer in a task with a review round; the goal planner; the debugger
of a task whose check the change breaks), on a workspace of real stdlib source with the largest
snapshot the window allows (a goal run's) and tools that return maximal results. Counted
independently here with the tokenizer the provider uses (DeepSeek V4's own for the DeepSeek
preset, cl100k otherwise)."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.agents import sizing
from lsp_agent.agents.client import OpenAIChatClient
from lsp_agent.agents.orchestrator import TaskSpec, run_task
from lsp_agent.agents.providers import resolve_provider
from lsp_agent.config import BudgetSettings, ModelSettings, Settings, VerifySettings
from lsp_agent.context.snapshot import SnapshotBuilder, budget_for
from lsp_agent.context.tokens import count_tokens, tokenizer_for
from lsp_agent.index.workspace import WorkspaceIndex
from tests.agents.test_orchestrator import block, review_rule
from tests.support.scripted_model import ScriptedModel
from tests.verify.conftest import needs_bwrap

WORKSPACE_CHARS = 4_200_000  # enough real Python to fill a 1M window's snapshot
PRESETS = {  # provider -> (window, key variable)
    "openai": (128_000, "OPENAI_API_KEY"),
    "moonshot": (262_144, "MOONSHOT_API_KEY"),
    "deepseek": (1_000_000, "DEEPSEEK_API_KEY"),
}


@pytest.fixture(scope="module")
def stdlib_workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorkspaceIndex, list[str]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    root = tmp_path_factory.mktemp("stdlib-ws")
    total, big = 0, []
    for path in sorted(stdlib.glob("*.py")) + sorted(stdlib.glob("*/*.py")):
        if "site-packages" in path.parts or "test" in path.parts:
            continue
        size = path.stat().st_size
        rel = path.relative_to(stdlib).as_posix()
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, root / rel)
        total += size
        if size > 90_000:
            big.append(rel)  # read_file returns its most: 2,000 lines or 120,000 characters
        if total >= WORKSPACE_CHARS:
            break
    index = WorkspaceIndex(root, cache_path=None)
    index.build(jobs=1)
    assert len(big) >= 8
    return index, big


def _rules(model: ScriptedModel, big: list[str], texts: dict[str, str]) -> None:
    """Researcher: sixteen maximal reads and a maximal grep, then a plan for two large files.
    Coders: one edit each. Reviewer: two maximal reads, one rejection, then approval."""
    reads = [
        {"name": "read_file", "arguments": {"path": p, "start_line": start}}
        for start in (1, 2001)
        for p in big[:8]
    ]
    for call in reads:
        model.add_rule(
            {"match": {"has_tool": "submit_plan"}, "reply": {"tool_calls": [call]}, "times": 1}
        )
    grep = {"name": "grep", "arguments": {"pattern": "self"}}
    model.add_rule(
        {"match": {"has_tool": "submit_plan"}, "reply": {"tool_calls": [grep]}, "times": 1}
    )
    targets = [{"path": p, "instructions": "add a comment at the top"} for p in big[:2]]
    plan = {"name": "submit_plan", "arguments": {"targets": targets, "notes": "n"}}
    model.add_rule({"match": {"has_tool": "submit_plan"}, "reply": {"tool_calls": [plan]}})
    for call in reads[2:4]:
        model.add_rule(
            {"match": {"has_tool": "submit_review"}, "reply": {"tool_calls": [call]}, "times": 1}
        )
    finding = {"path": big[0], "message": "say why in the comment"}
    model.add_rule(review_rule(False, [finding], times=1))
    model.add_rule(review_rule(True))

    def coder(request: dict[str, Any]) -> dict[str, Any]:
        text = request["messages"][2]["content"]
        path = next(p for p in big[:2] if f"# Target file: {p}" in text)
        # A comment after the file's last line (SEARCH its last lines, REPLACE them plus it).
        last = "\n".join(texts[path].rstrip("\n").rsplit("\n", 4)[-4:]) + "\n"
        note = f"# reviewed: {len(request['messages'])}\n"
        return {"content": block(path, last, last + note)}

    model.add_rule({"match": {"contains": "# Target file:"}, "reply": coder})


@pytest.mark.parametrize("provider", list(PRESETS))
async def test_every_request_fits_its_window(
    stdlib_workspace: tuple[WorkspaceIndex, list[str]], tmp_path: Path, provider: str
) -> None:
    index, big = stdlib_workspace
    window, key = PRESETS[provider]
    with ScriptedModel() as model:
        # The per-task token budget is not what this test is about: ~12 requests of a full window.
        settings = Settings(
            model=ModelSettings(provider=provider, base_url=model.url),
            budgets=BudgetSettings(max_tokens=100_000_000),
        )
        config = resolve_provider(settings, {key: "sk-test-0000"})
        assert config.context_window == window
        budget = budget_for(settings, config.model_for("coder"), kind="goal", provider=config)
        builder = SnapshotBuilder(index, settings.context, state_dir=None)
        snapshot = builder.build(budget=budget, focus=[big[0]])
        # the largest snapshot the window allows, filled (the workspace is larger than it)
        assert snapshot.manifest.prefix_tokens + snapshot.manifest.tail_tokens > budget * 0.9
        _rules(model, big, {p: index.text(p) or "" for p in big[:2]})
        client = OpenAIChatClient(config, max_retries=0, timeout=60)
        result = await run_task(
            TaskSpec(instruction="comment the module", kind="refactor", files=[big[0]]),
            index=index,
            snapshot=snapshot,
            client=client,
            settings=settings,
            transcript_dir=tmp_path / "transcripts",
        )
        await client.aclose()
        requests = model.requests

    assert result.state == "succeeded", result.error
    roles = _assert_every_request_fits(requests, window, settings, config, provider)
    assert roles == {"researcher", "coder", "reviewer"}
    # The conversation outgrew its share: older tool results were elided, never the task.
    records = result.requests
    assert any(r["elided_results"] for r in records), "no elision: the test did not push"
    assert all(r["sections"]["task"] > 0 for r in records)
    # no file is carried in full twice: not the focus file, not the coders' files
    assert all(r["duplicated_tokens"] == 0 for r in records), [
        (r["agent"], r["duplicated_files"]) for r in records if r["duplicated_tokens"]
    ]
    assert any(big[1] in r["files"] for r in records if r["agent"] == "coder-2")
    for request in requests:
        assert "# Task" in request.messages[2]["content"]
    # every request's manifest was journaled with the result (the task journal stores it)
    assert len(records) == len(requests)
    # nothing but the reply's room and the margin was left unused by the largest request
    largest = max(r["prompt_tokens"] + r["max_tokens"] for r in records)
    assert largest > window * 0.5


def _assert_every_request_fits(
    requests: list[Any], window: int, settings: Settings, config: Any, provider: str
) -> set[str]:
    """Each request's prompt (counted here with the provider's tokenizer) + its max_tokens is
    within the window; returns the roles seen."""
    name, count = tokenizer_for(sizing.family_of(settings, config.model_for("coder"), config))
    assert name == ("deepseek-v4" if provider == "deepseek" else "cl100k")
    cache: dict[str, int] = {}

    def tokens(text: str) -> int:
        if text not in cache:
            cache[text] = count(text)
        return cache[text]

    roles = set()
    for request in requests:
        role = _role(request.messages)
        roles.add(role)
        prompt = sum(_message_tokens(m, tokens) for m in request.messages)
        prompt += tokens(_tools_json(request.body.get("tools")))
        reply = request.body["max_tokens"]
        assert reply == sizing.reply_tokens(role, window)
        assert prompt + reply <= window, (provider, role, prompt, reply)
        if name == "cl100k":  # a stand-in: the margin must cover a gap of its own size
            margin = sizing.margin_rate(name, sizing.family_of(settings, None, config))
            assert prompt * (1 + margin) + reply <= window
    return roles


def _setup(
    provider: str, model: ScriptedModel, **settings_fields: Any
) -> tuple[int, Settings, Any]:
    window, key = PRESETS[provider]
    settings = Settings(
        model=ModelSettings(provider=provider, base_url=model.url),
        budgets=BudgetSettings(max_tokens=100_000_000),
        **settings_fields,
    )
    config = resolve_provider(settings, {key: "sk-test-0000"})
    assert config.context_window == window
    return window, settings, config


def _maximal_calls(big: list[str]) -> list[dict[str, Any]]:
    """Sixteen reads of large files (a read returns at most 2,000 lines or 120,000 chars) and a
    grep that returns its most hits, as the task test's researcher makes."""
    reads = [
        {"name": "read_file", "arguments": {"path": p, "start_line": start}}
        for start in (1, 2001)
        for p in big[:8]
    ]
    return [*reads, {"name": "grep", "arguments": {"pattern": "self"}}]


@pytest.mark.parametrize("provider", list(PRESETS))
async def test_the_goal_planner_fits_its_window(
    stdlib_workspace: tuple[WorkspaceIndex, list[str]], tmp_path: Path, provider: str
) -> None:
    """A goal run's snapshot takes the window's share; the planner's maximal reads must still
    leave every request within the window (its older results elided)."""
    from lsp_agent.goals.planner import plan_goal

    index, big = stdlib_workspace
    with ScriptedModel() as model:
        window, settings, config = _setup(provider, model)
        budget = budget_for(settings, config.model_for("coder"), kind="goal", provider=config)
        snapshot = SnapshotBuilder(index, settings.context, state_dir=None).build(budget=budget)
        for call in _maximal_calls(big):
            model.add_rule(
                {"match": {"has_tool": "submit_goal_plan"}, "reply": {"tool_calls": [call]},
                 "times": 1}
            )  # fmt: skip
        step = {
            "key": "s1", "title": "comment", "instructions": "add a comment", "files": [big[0]],
            "depends_on": [], "acceptance": {"kind": "criterion", "value": "a comment is there"},
        }  # fmt: skip
        submit = {"name": "submit_goal_plan", "arguments": {"steps": [step], "notes": "n"}}
        model.add_rule(
            {"match": {"has_tool": "submit_goal_plan"}, "reply": {"tool_calls": [submit]}}
        )
        client = OpenAIChatClient(config, max_retries=0, timeout=60)
        try:
            reply = await plan_goal(
                goal="comment the modules", index=index, snapshot=snapshot, client=client,
                settings=settings, transcript_path=tmp_path / "planner.jsonl",
            )  # fmt: skip
        finally:
            await client.aclose()
        requests = model.requests
    assert [s.key for s in reply.steps] == ["s1"]
    assert len(requests) == 18
    assert _assert_every_request_fits(requests, window, settings, config, provider) == {"planner"}
    elided = [r for r in requests if "[elided to keep the request" in str(r.messages)]
    assert elided, "no elision: the test did not push"


@needs_bwrap
@pytest.mark.parametrize("provider", list(PRESETS))
async def test_the_debugger_fits_its_window(
    stdlib_workspace: tuple[WorkspaceIndex, list[str]], tmp_path: Path, provider: str
) -> None:
    """A check the change breaks sends the debugger in; its maximal reads must fit too."""
    index, big = stdlib_workspace
    target = big[0]
    probe = f"import sys; sys.exit('# reviewed' in open({target!r}).read())"
    probe_check = {"name": "probe", "command": ["python3", "-c", probe], "kind": "test"}
    verify = VerifySettings(commands=(probe_check,), rounds=1)
    with ScriptedModel() as model:
        window, settings, config = _setup(provider, model, verify=verify)
        # the largest snapshot the window allows, so the debugger's reads must be elided
        budget = budget_for(settings, config.model_for("coder"), kind="goal", provider=config)
        snapshot = SnapshotBuilder(index, settings.context, state_dir=None).build(
            budget=budget, focus=[target]
        )
        plan = {"targets": [{"path": target, "instructions": "add a comment"}], "notes": "n"}
        model.add_rule(
            {"match": {"has_tool": "submit_plan"},
             "reply": {"tool_calls": [{"name": "submit_plan", "arguments": plan}]}}
        )  # fmt: skip
        for call in _maximal_calls(big):
            model.add_rule(
                {"match": {"has_tool": "submit_findings"}, "reply": {"tool_calls": [call]},
                 "times": 1}
            )  # fmt: skip
        finding = {"path": target, "message": "the probe fails on the comment"}
        findings = {"name": "submit_findings", "arguments": {"findings": [finding]}}
        model.add_rule(
            {"match": {"has_tool": "submit_findings"}, "reply": {"tool_calls": [findings]}}
        )
        text = index.text(target) or ""

        def coder(request: dict[str, Any]) -> dict[str, Any]:
            last = "\n".join(text.rstrip("\n").rsplit("\n", 4)[-4:]) + "\n"
            note = f"# reviewed: {len(request['messages'])}\n"
            return {"content": block(target, last, last + note)}

        model.add_rule({"match": {"contains": "# Target file:"}, "reply": coder, "times": 1})
        model.add_rule(
            {
                "match": {"contains": "# Target file:"},
                "reply": {"content": "NO CHANGES NEEDED: kept"},
            }
        )
        client = OpenAIChatClient(config, max_retries=0, timeout=60)
        try:
            result = await run_task(
                TaskSpec(instruction="comment the module", kind="refactor", files=[target]),
                index=index, snapshot=snapshot, client=client, settings=settings,
                transcript_dir=tmp_path / "transcripts",
            )  # fmt: skip
        finally:
            await client.aclose()
        requests = model.requests
    assert result.state == "unverified", (result.state, result.error)
    roles = _assert_every_request_fits(requests, window, settings, config, provider)
    assert "debugger" in roles
    debugger = [r for r in result.requests if r["role"] == "debugger"]
    assert len(debugger) == 18 and any(r["elided_results"] for r in debugger)


def _role(messages: list[dict[str, Any]]) -> str:
    text = str(messages[2]["content"])
    return text.split("\n", 1)[0].removeprefix("# Role: ").strip()


def _message_tokens(message: dict[str, Any], tokens: Any) -> int:
    total = sizing.MESSAGE_OVERHEAD
    for key in ("content", "reasoning_content"):
        if isinstance(message.get(key), str):
            total += tokens(message[key])
    for call in message.get("tool_calls") or ():
        total += tokens(call["function"]["name"]) + tokens(call["function"]["arguments"])
    return total


def _tools_json(tools: Any) -> str:
    import json

    return json.dumps(list(tools), sort_keys=True) if tools else ""


def test_cl100k_counts_are_what_the_snapshot_uses() -> None:
    text = "def f():\n    return 1\n"
    assert count_tokens(text) == tokenizer_for("")[1](text)
