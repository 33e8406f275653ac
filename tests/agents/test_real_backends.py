"""How the client behaves with what real (local) servers do, through the real SDK and HTTP.

Each behaviour of llama-cpp-python / llama.cpp seen in issue 17 is a switch of the scripted
server (tests/support/scripted_model.py): the window it reports, streams without usage, tools
dropped without ``tool_choice``, HTML-escaped prompts, arguments cut at the limit but marked
``tool_calls``; plus timeouts of a local endpoint and a short API key in error messages.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from lsp_agent.agents.client import ModelError, OpenAIChatClient, window_from_models
from lsp_agent.agents.providers import describe_provider, resolve_provider
from lsp_agent.agents.sizing import reply_tokens
from lsp_agent.config import ModelSettings, Settings
from tests.support.scripted_model import ScriptedModel

PLAN_TOOL = {
    "type": "function",
    "function": {
        "name": "submit_plan",
        "description": "finish",
        "parameters": {"type": "object", "properties": {"notes": {"type": "string"}}},
    },
}


def local_client(server: ScriptedModel, **model: Any) -> OpenAIChatClient:
    settings = Settings(model=ModelSettings(provider="local", base_url=server.url, **model))
    return OpenAIChatClient(resolve_provider(settings, env={}), backoff_base=0.01, timeout=10)


def user(text: str = "hi") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def test_every_request_carries_max_tokens_and_tools_carry_tool_choice() -> None:
    extra = {"tool_choice": "auto", "temperature": 0}  # the documented llama-cpp workaround
    with ScriptedModel([{"reply": {"content": "ok"}}], n_ctx=16_384) as server:
        client = local_client(server, extra_body=extra)
        await client.complete(role="researcher", messages=user(), tools=[PLAN_TOOL])
        await client.complete(role="coder", messages=user())
        research, code = server.requests
    window = client.provider.context_window
    assert window == 16_384
    assert research.body["max_tokens"] == reply_tokens("researcher", window)
    assert code.body["max_tokens"] == reply_tokens("coder", window)
    assert research.body["tool_choice"] == "auto" and research.tool_names == ["submit_plan"]
    # A tool-less request carries neither tools nor the tool_choice of extra_body.
    assert "tool_choice" not in code.body and "tools" not in code.body
    assert code.body["temperature"] == 0


async def test_tools_reach_a_server_that_drops_them_without_tool_choice() -> None:
    rules = [
        {"match": {"has_tool": "submit_plan"}, "reply": {"tool_calls": [{"name": "submit_plan"}]}},
        {"reply": {"content": "I cannot call tools"}},
    ]
    with ScriptedModel(rules, tools_need_tool_choice=True) as server:
        reply = await local_client(server).complete(
            role="researcher", messages=user(), tools=[PLAN_TOOL]
        )
    assert [c.name for c in reply.tool_calls] == ["submit_plan"]


async def test_the_window_comes_from_the_server_once_unless_configured() -> None:
    with ScriptedModel([{"reply": {"content": "ok"}}], n_ctx=8192) as server:
        client = local_client(server)
        assert client.provider.window_source == "preset"
        for _ in range(3):
            await client.complete(role="coder", messages=user())
        assert server.model_lists == 1  # asked once (the model name came from the same page)
        assert client.provider.context_window == 8192
        assert client.provider.window_source == "server /v1/models"
        assert "8,192 tokens (reported by the server /v1/models)" in describe_provider(
            client.provider
        )

        configured = local_client(server, context_window=4096)
        await configured.complete(role="coder", messages=user())
        assert configured.provider.context_window == 4096
        assert server.requests[-1].body["max_tokens"] == reply_tokens("coder", 4096)
    assert "configured" in describe_provider(configured.provider)


def test_window_fields_of_other_servers() -> None:
    assert window_from_models({"data": [{"id": "m", "max_model_len": 32768}]}, "m") == 32768
    assert window_from_models({"data": [{"id": "a", "context_length": 4096}]}) == 4096
    two = {"data": [{"id": "a", "n_ctx": 1}, {"id": "b", "meta": {"n_ctx": 2048}}]}
    assert window_from_models(two, "b") == 2048
    assert window_from_models({"data": [{"id": "x", "owned_by": "me"}]}) is None
    assert window_from_models("not json") is None


async def test_a_request_past_the_window_is_what_the_server_refuses() -> None:
    # The scripted server enforces its window like llama.cpp: proof that the check is real.
    with ScriptedModel([{"reply": {"content": "ok"}}], n_ctx=600) as server:
        client = local_client(server, context_window=100_000)  # a wrong configuration
        with pytest.raises(ModelError) as err:
            await client.complete(role="coder", messages=user("x" * 4000))
    assert err.value.kind == "request" and "exceed context window of 600" in err.value.message


@pytest.mark.parametrize("stream", [True, False])
async def test_usage_the_server_does_not_report_is_estimated_and_flagged(stream: bool) -> None:
    rules = [{"reply": {"content": "y" * 400, "usage": {"prompt_tokens": 0}}}]
    with ScriptedModel(rules, stream_usage=False, usage_style="openai") as server:
        client = local_client(server)
        reply = await client.complete(role="coder", messages=user("x" * 4000), stream=stream)
    if stream:  # no usage chunk at all: estimated from what was sent and received
        assert reply.usage.estimated_tokens == reply.usage.total_tokens > 1000
        assert reply.usage.completion_tokens == 100 and not reply.usage.reported
    else:  # the server's own (partial) report is kept as reported
        assert reply.usage.estimated_tokens == 0
    assert reply.usage.attempts == 1 and reply.usage.requests == 1


async def test_every_attempt_is_counted() -> None:
    rules = [
        {"fault": {"kind": "status", "status": 503}, "times": 1},
        {"fault": {"kind": "drop"}, "times": 1},
        {"reply": {"content": "ok", "usage": {"prompt_tokens": 50, "completion_tokens": 5}}},
    ]
    with ScriptedModel(rules) as server:
        client = local_client(server)
        reply = await client.complete(role="researcher", messages=user("z" * 400))
    assert reply.attempts == 3 and reply.usage.attempts == 3 and reply.usage.requests == 1
    # The dropped attempt had read the prompt: it is charged, as an estimate.
    assert reply.usage.estimated_tokens > 100
    assert reply.usage.prompt_tokens == 50 + reply.usage.estimated_tokens
    assert client.total_usage == reply.usage


async def test_a_local_timeout_is_not_retried_and_names_the_likely_cause() -> None:
    rules = [{"reply": {"content": "late"}, "delay_ms": 1500}]
    with ScriptedModel(rules) as server:
        settings = Settings(model=ModelSettings(provider="local", base_url=server.url))
        client = OpenAIChatClient(resolve_provider(settings, env={}), timeout=0.3, max_retries=4)
        started = time.monotonic()
        with pytest.raises(ModelError) as err:
            await client.complete(role="coder", messages=user("q" * 800))
        elapsed = time.monotonic() - started
        requests = len(server.requests)
    assert requests == 1 and elapsed < 1.4
    message = err.value.message
    assert err.value.kind == "timeout" and "one request at a time" in message
    assert "model.concurrency" in message and "not retried" in message
    assert err.value.usage.attempts == 1 and err.value.usage.estimated_tokens > 0


async def test_a_remote_provider_on_loopback_still_retries_timeouts() -> None:
    # A proxy for a remote provider on this machine is not a single-slot local model server.
    rules = [
        {"reply": {"content": "late"}, "delay_ms": 1000, "times": 1},
        {"reply": {"content": "ok"}},
    ]
    with ScriptedModel(rules) as server:
        settings = Settings(model=ModelSettings(provider="openai", base_url=server.url))
        provider = dataclasses.replace(resolve_provider(settings, {"OPENAI_API_KEY": "k" * 20}))
        assert provider.local  # a loopback URL
        remote = dataclasses.replace(provider, local=False)
        client = OpenAIChatClient(remote, timeout=0.3, backoff_base=0.01)
        reply = await client.complete(role="coder", messages=user())
    assert reply.content == "ok" and reply.attempts == 2


async def test_html_escaped_echoes_are_undone_for_a_local_server() -> None:
    source = "def f(a) -> int:\n    return a & 1\n"

    def echo(body: dict[str, Any]) -> dict[str, Any]:
        text = body["messages"][-1]["content"]  # what the model saw: escaped
        assert "-&gt;" in text and "&amp;" in text
        return {"content": text.replace("int", "bool")}

    with ScriptedModel([{"reply": echo}], html_escape=True) as server:
        reply = await local_client(server).complete(role="coder", messages=user(source))
        assert server.errors == []
    assert reply.content == source.replace("int", "bool")


async def test_an_entity_the_file_really_has_is_kept() -> None:
    source = "<p>Tom &amp; Jerry -&gt; here</p>\n"
    with ScriptedModel([{"reply": {"content": source + "-&gt;"}}]) as server:
        reply = await local_client(server).complete(role="coder", messages=user(source))
    assert reply.content == source + "-&gt;"


async def test_arguments_cut_at_the_limit_but_marked_tool_calls_count_as_cut() -> None:
    call = {"name": "submit_plan", "arguments": {"notes": "a long plan " * 20}}
    rules = [{"reply": {"tool_calls": [call]}, "fault": {"kind": "cut_arguments"}}]
    with ScriptedModel(rules) as server:
        reply = await local_client(server).complete(
            role="researcher", messages=user(), tools=[PLAN_TOOL]
        )
    assert reply.tool_calls[0].error is not None
    assert reply.finish_reason == "length"


async def test_a_reply_longer_than_max_tokens_is_cut_by_the_server() -> None:
    with ScriptedModel([{"reply": {"content": "w" * 100_000}}], n_ctx=4096) as server:
        reply = await local_client(server).complete(role="coder", messages=user())
    assert reply.finish_reason == "length" and reply.max_tokens == reply_tokens("coder", 4096)


@pytest.mark.parametrize(("key", "masked"), [("x", False), ("sk-long-enough-key-1234", True)])
async def test_a_key_is_masked_only_from_the_redactors_floor(key: str, masked: bool) -> None:
    message = f"the request exceeds the available context size (key {key})"
    rules = [{"fault": {"kind": "status", "status": 400, "message": message}}]
    with ScriptedModel(rules) as server:
        settings = Settings(model=ModelSettings(provider="local", base_url=server.url))
        provider = resolve_provider(settings, {"LSP_AGENT_API_KEY": key})
        with pytest.raises(ModelError) as err:
            await OpenAIChatClient(provider).complete(role="coder", messages=user())
    assert "exceeds the available context size" in err.value.message
    assert ("***" in err.value.message) is masked
    assert (key in err.value.message) is not masked
