"""OpenAIChatClient through the real openai SDK against the scripted server: replies."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from lsp_agent.agents.client import (
    ModelError,
    ModelReply,
    OpenAIChatClient,
    ToolCall,
    Usage,
    assistant_message,
)
from lsp_agent.agents.providers import resolve_provider
from lsp_agent.config import ModelSettings, Settings
from tests.support.scripted_model import ScriptedModel

SECRET = "sk-test-secret-key-4242"
KEYS = {"deepseek": "DEEPSEEK_API_KEY", "moonshot": "MOONSHOT_API_KEY", "openai": "OPENAI_API_KEY"}
PLAN_TOOL = {
    "type": "function",
    "function": {
        "name": "submit_plan",
        "description": "submit the plan",
        "parameters": {
            "type": "object",
            "properties": {"targets": {"type": "array", "items": {"type": "object"}}},
            "required": ["targets"],
        },
    },
}


def make_client(
    server: ScriptedModel, provider: str = "deepseek", **kwargs: Any
) -> OpenAIChatClient:
    settings = Settings(model=ModelSettings(provider=provider, base_url=server.url))
    env = {KEYS[provider]: SECRET} if provider in KEYS else {}
    kwargs.setdefault("backoff_base", 0.01)
    return OpenAIChatClient(resolve_provider(settings, env), **kwargs)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "you are a test"}, {"role": "user", "content": text}]


@pytest.mark.parametrize("stream", [False, True])
async def test_plain_reply_with_usage(model: ScriptedModel, stream: bool) -> None:
    usage = {"prompt_tokens": 1200, "completion_tokens": 30, "cached_tokens": 1024}
    model.add_rule({"reply": {"content": "hello there", "usage": usage}})
    client = make_client(model)
    reply = await client.complete(role="researcher", messages=user("hi"), stream=stream)
    assert reply.content == "hello there" and reply.tool_calls == []
    assert reply.finish_reason == "stop" and reply.reasoning_content is None
    assert reply.usage == Usage(
        prompt_tokens=1200, completion_tokens=30, cached_tokens=1024, requests=1, attempts=1
    )
    request = model.requests[0]
    assert request.stream is stream and request.model == "deepseek-v4-flash"
    if stream:
        assert request.body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calls_are_parsed(model: ScriptedModel, stream: bool) -> None:
    plan = {"targets": [{"path": "a.py", "instructions": "fix"}], "notes": "ü ✓"}
    model.add_rule(
        {
            "match": {"has_tool": "submit_plan"},
            "reply": {
                "content": "here is the plan",
                "tool_calls": [
                    {"name": "submit_plan", "arguments": plan},
                    {"name": "submit_plan", "arguments": {"targets": []}},
                ],
            },
        }
    )
    reply = await make_client(model).complete(
        role="researcher", messages=user("plan"), tools=[PLAN_TOOL], stream=stream
    )
    assert reply.finish_reason == "tool_calls" and reply.content == "here is the plan"
    assert [c.parsed for c in reply.tool_calls] == [plan, {"targets": []}]
    assert all(c.error is None and c.name == "submit_plan" for c in reply.tool_calls)
    assert len({c.id for c in reply.tool_calls}) == 2
    assert model.requests[0].tool_names == ["submit_plan"]


@pytest.mark.parametrize("stream", [False, True])
async def test_invalid_tool_json_is_reported_not_raised(model: ScriptedModel, stream: bool) -> None:
    model.add_rule(
        {
            "fault": {"kind": "invalid_tool_json"},
            "reply": {"tool_calls": [{"name": "submit_plan", "arguments": {"targets": []}}]},
        }
    )
    reply = await make_client(model).complete(
        role="researcher", messages=user("plan"), tools=[PLAN_TOOL], stream=stream
    )
    (call,) = reply.tool_calls
    assert call.parsed is None and call.arguments.startswith('{"targets": []')
    assert call.error is not None and "not valid JSON" in call.error and "submit_plan" in call.error
    assert reply.attempts == 1  # bad output is the agent loop's business, not a retry


def test_non_object_arguments_are_an_error_too() -> None:
    from lsp_agent.agents.usage import make_tool_call

    assert make_tool_call("c", "f", "[1, 2]", 0).error == (
        "the arguments of f must be a JSON object, got list"
    )
    assert make_tool_call(None, "f", "", 3) == ToolCall("call_3_f", "f", "", {}, None)


@pytest.mark.parametrize("stream", [False, True])
async def test_reasoning_is_captured_and_echoed_on_tool_turns_for_deepseek(
    model: ScriptedModel, stream: bool
) -> None:
    model.add_rule(
        {
            "match": {"last_role": "user"},
            "reply": {
                "reasoning_content": "I should read the file first.",
                "tool_calls": [{"name": "submit_plan", "arguments": {"targets": []}}],
            },
        }
    )
    model.add_rule(
        {"match": {"last_role": "tool"}, "reply": {"content": "done", "reasoning_content": "ok"}}
    )
    client = make_client(model)
    messages = user("plan")
    reply = await client.complete(role="coder", messages=messages, tools=[PLAN_TOOL], stream=stream)
    assert reply.reasoning_content == "I should read the file first."
    assert reply.content == ""  # reasoning never leaks into content
    turn = assistant_message(reply)
    assert turn["reasoning_content"] == "I should read the file first."
    assert turn["tool_calls"][0]["function"]["name"] == "submit_plan"
    messages += [turn, {"role": "tool", "tool_call_id": reply.tool_calls[0].id, "content": "ok"}]
    final = await client.complete(role="coder", messages=messages, tools=[PLAN_TOOL], stream=stream)
    assert final.content == "done" and final.reasoning_content == "ok"
    sent = model.requests[1].messages[2]
    assert sent["reasoning_content"] == "I should read the file first."
    assert "reasoning_content" not in assistant_message(final)  # not a tool-call turn


async def test_kimi_tool_turn_drops_empty_content_and_reasoning(model: ScriptedModel) -> None:
    model.add_rule(
        {
            "reply": {
                "reasoning_content": "hmm",
                "tool_calls": [{"name": "submit_plan", "arguments": {"targets": []}}],
            }
        }
    )
    client = make_client(model, provider="moonshot")
    reply = await client.complete(role="researcher", messages=user("x"), tools=[PLAN_TOOL])
    turn = assistant_message(reply)
    assert "content" not in turn and "reasoning_content" not in turn
    assert reply.reasoning_content == "hmm"  # still captured for the transcript
    assert model.requests[0].model == "kimi-k2.6"


async def test_openai_style_cached_tokens_are_read(model: ScriptedModel) -> None:
    model.add_rule(
        {
            "reply": {
                "content": "x",
                "usage": {"prompt_tokens": 2048, "cached_tokens": 1920, "style": "openai"},
            }
        }
    )
    reply = await make_client(model, provider="openai").complete(role="coder", messages=user("a"))
    assert reply.usage.cached_tokens == 1920 and reply.usage.prompt_tokens == 2048


async def test_deepseek_style_cached_tokens_are_read(model: ScriptedModel) -> None:
    model.add_rule(
        {
            "reply": {
                "content": "x",
                "usage": {"prompt_tokens": 2048, "cached_tokens": 1536, "style": "deepseek"},
            }
        }
    )
    reply = await make_client(model).complete(role="coder", messages=user("a"))
    assert reply.usage.cached_tokens == 1536


async def test_stable_prefix_is_seen_as_cached_and_usage_sums(model: ScriptedModel) -> None:
    model.add_rule({"reply": {"content": "ok"}})
    prefix = {"role": "system", "content": "workspace snapshot\n" + "def f():\n    pass\n" * 400}
    client = make_client(model)
    total = Usage()
    for question in ("first question", "second question", "third question"):
        reply = await client.complete(
            role="researcher", messages=[prefix, {"role": "user", "content": question}]
        )
        total = total + reply.usage
    assert total.requests == 3
    assert total.cached_tokens >= 2 * 1600  # the 2nd and 3rd requests reuse the ~1,700-token prefix
    assert total.cached_tokens < total.prompt_tokens
    assert client.total_usage == total


async def test_role_picks_its_model_and_streaming_defaults_to_coders(model: ScriptedModel) -> None:
    model.add_rule({"reply": {"content": "ok"}})
    client = make_client(model)
    for role in ("researcher", "coder", "reviewer"):
        reply = await client.complete(role=role, messages=user(role))
        assert reply.model == model.requests[-1].model
    assert [(r.model, r.stream) for r in model.requests] == [
        ("deepseek-v4-flash", False),
        ("deepseek-v4-pro", True),
        ("deepseek-v4-flash", False),
    ]
    # every request carries the reply's room for its role (sizing.reply_tokens)
    assert [r.body["max_tokens"] for r in model.requests] == [8_192, 32_768, 8_192]


async def test_thinking_switch_goes_in_the_request_body(model: ScriptedModel) -> None:
    model.add_rule({"reply": {"content": "ok"}})
    settings = Settings(model=ModelSettings(provider="deepseek", base_url=model.url, thinking=True))
    client = OpenAIChatClient(resolve_provider(settings, {"DEEPSEEK_API_KEY": SECRET}))
    await client.complete(role="coder", messages=user("think"), options={"max_tokens": 100})
    body = model.requests[0].body
    assert body["thinking"] == {"type": "enabled"} and body["max_tokens"] == 100


async def test_local_server_without_a_model_uses_the_first_listed(model: ScriptedModel) -> None:
    model.add_rule({"reply": {"content": "ok"}})
    client = make_client(model, provider="local")
    reply = await client.complete(role="coder", messages=user("a"))
    assert reply.model == "scripted-model" == model.requests[0].model


async def test_untyped_tool_property_is_refused_before_sending(model: ScriptedModel) -> None:
    bad = json.loads(json.dumps(PLAN_TOOL))
    bad["function"]["parameters"]["properties"]["notes"] = {"description": "free text"}
    with pytest.raises(ModelError) as err:
        await make_client(model).complete(role="researcher", messages=user("a"), tools=[bad])
    assert err.value.kind == "config" and "submit_plan.notes" in err.value.message
    assert model.requests == []


async def test_key_never_in_repr_or_logs(
    model: ScriptedModel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    model.add_rule({"fault": {"kind": "status", "status": 500}, "times": 1})
    model.add_rule({"reply": {"content": "ok"}})
    client = make_client(model)
    await client.complete(role="coder", messages=user("a"))
    assert SECRET not in repr(client) and SECRET not in caplog.text
    assert "retry 1 of 4" in caplog.text


def test_assistant_message_for_a_plain_reply() -> None:
    reply = ModelReply(content="answer", reasoning_content="thoughts", echo_reasoning=True)
    assert assistant_message(reply) == {"role": "assistant", "content": "answer"}
