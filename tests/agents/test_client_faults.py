"""OpenAIChatClient against injected faults: retries, Retry-After, errors, concurrency, cancel."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any

import pytest

from lsp_agent.agents.client import ModelError, OpenAIChatClient
from lsp_agent.agents.providers import resolve_provider
from lsp_agent.config import ModelSettings, Settings
from tests.support.scripted_model import ScriptedModel

SECRET = "sk-test-secret-key-4242"
OK = {"reply": {"content": "recovered"}}


def make_client(server: ScriptedModel, *, local: bool = False, **kwargs: Any) -> OpenAIChatClient:
    """The scripted server stands in for a remote DeepSeek unless ``local``: a loopback URL
    alone would make the provider local (timeouts not retried, see test_real_backends.py)."""
    settings = Settings(model=ModelSettings(provider="deepseek", base_url=server.url))
    kwargs.setdefault("backoff_base", 0.01)
    provider = resolve_provider(settings, {"DEEPSEEK_API_KEY": SECRET})
    return OpenAIChatClient(dataclasses.replace(provider, local=local), **kwargs)


def user(text: str = "hi") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def wait_for(server: ScriptedModel, count: int, *, finished: bool) -> None:
    """Poll until ``count`` requests arrived (and finished): ordering without fixed sleeps."""
    while True:
        reqs = server.requests
        if len(reqs) >= count and (not finished or reqs[count - 1].end is not None):
            return
        await asyncio.sleep(0.01)


def gaps(server: ScriptedModel) -> list[float]:
    """Seconds between the end of each request and the start of the next."""
    reqs = server.requests
    return [b.start - a.end for a, b in itertools.pairwise(reqs) if a.end is not None]


async def test_slow_answer_times_out_then_retry_succeeds(model: ScriptedModel) -> None:
    model.add_rule({"reply": {"content": "too late"}, "delay_ms": 1500, "times": 1})
    model.add_rule(OK)
    reply = await make_client(model, timeout=0.3).complete(role="researcher", messages=user())
    assert reply.content == "recovered" and reply.attempts == 2
    assert len(model.requests) == 2


async def test_timeouts_exhausted_give_a_timeout_error(model: ScriptedModel) -> None:
    model.add_rule({"reply": {"content": "too late"}, "delay_ms": 800})
    with pytest.raises(ModelError) as err:
        await make_client(model, timeout=0.2, max_retries=1).complete(
            role="researcher", messages=user()
        )
    assert err.value.kind == "timeout" and "after 2 attempts" in err.value.message


@pytest.mark.parametrize("header", ["retry_after", "retry_after_ms"])
async def test_429_waits_for_retry_after_then_succeeds(model: ScriptedModel, header: str) -> None:
    value = 0.4 if header == "retry_after" else 400
    model.add_rule({"fault": {"kind": "status", "status": 429, header: value}, "times": 1})
    model.add_rule(OK)
    # A backoff far shorter than Retry-After: any wait of 0.4 s can only come from the header.
    reply = await make_client(model, backoff_base=0.001).complete(role="coder", messages=user())
    assert reply.content == "recovered" and reply.attempts == 2
    assert gaps(model)[0] >= 0.4


async def test_retry_after_is_capped(model: ScriptedModel) -> None:
    model.add_rule({"fault": {"kind": "status", "status": 429, "retry_after": 3600}, "times": 1})
    model.add_rule(OK)
    client = make_client(model, retry_after_max=0.05)
    reply = await client.complete(role="coder", messages=user())
    assert reply.attempts == 2 and gaps(model)[0] < 3600


async def test_rate_limit_exhausted_says_how_often_and_the_last_retry_after(
    model: ScriptedModel,
) -> None:
    model.add_rule({"fault": {"kind": "status", "status": 429, "retry_after": 0.01}})
    with pytest.raises(ModelError) as err:
        await make_client(model, max_retries=4).complete(role="coder", messages=user())
    assert err.value.kind == "rate_limit" and err.value.status == 429
    assert err.value.message == "rate limited by deepseek (429) 5 times; last Retry-After 0.01 s"
    assert len(model.requests) == 5


@pytest.mark.parametrize("stream", [False, True])
async def test_server_error_then_success(model: ScriptedModel, stream: bool) -> None:
    model.add_rule({"fault": {"kind": "status", "status": 500}, "times": 2})
    model.add_rule(OK)
    reply = await make_client(model).complete(role="coder", messages=user(), stream=stream)
    assert reply.content == "recovered" and reply.attempts == 3


async def test_server_errors_exhausted(model: ScriptedModel) -> None:
    model.add_rule({"fault": {"kind": "status", "status": 503, "message": "overloaded"}})
    with pytest.raises(ModelError) as err:
        await make_client(model, max_retries=2).complete(role="coder", messages=user())
    assert err.value.kind == "server" and "overloaded" in err.value.message
    assert "3 times" in err.value.message and len(model.requests) == 3


@pytest.mark.parametrize("stream", [False, True])
async def test_dropped_connection_is_retried(model: ScriptedModel, stream: bool) -> None:
    model.add_rule({"fault": {"kind": "drop"}, "times": 1})
    model.add_rule(OK)
    reply = await make_client(model).complete(role="coder", messages=user(), stream=stream)
    assert reply.content == "recovered" and reply.attempts == 2


async def test_dropped_connections_exhausted(model: ScriptedModel) -> None:
    model.add_rule({"fault": {"kind": "drop"}})
    with pytest.raises(ModelError) as err:
        await make_client(model, max_retries=1).complete(role="coder", messages=user())
    assert err.value.kind == "connection" and model.url in err.value.message


@pytest.mark.parametrize("stream", [False, True])
async def test_truncated_answer_is_retried(model: ScriptedModel, stream: bool) -> None:
    partial = {"content": "SEARCH/REPLACE block that never finishes " * 5}
    model.add_rule({"fault": {"kind": "truncate_stream"}, "reply": partial, "times": 1})
    model.add_rule(OK)
    reply = await make_client(model).complete(role="coder", messages=user(), stream=stream)
    assert reply.content == "recovered" and reply.attempts == 2  # no half answer leaks out


async def test_truncated_streams_exhausted(model: ScriptedModel) -> None:
    model.add_rule({"fault": {"kind": "truncate_stream"}, "reply": {"content": "x" * 200}})
    with pytest.raises(ModelError) as err:
        await make_client(model, max_retries=1).complete(role="coder", messages=user())
    assert err.value.kind == "connection" and "before it finished" in err.value.message


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_error_is_immediate_and_names_the_variable(
    model: ScriptedModel, status: int
) -> None:
    message = f"Incorrect API key provided: {SECRET}"  # servers may echo the key: it is masked
    model.add_rule({"fault": {"kind": "status", "status": status, "message": message}})
    with pytest.raises(ModelError) as err:
        await make_client(model).complete(role="coder", messages=user())
    assert err.value.kind == "auth" and "check DEEPSEEK_API_KEY" in err.value.message
    assert SECRET not in err.value.message and SECRET not in repr(err.value)
    assert len(model.requests) == 1


async def test_bad_request_is_not_retried_and_404_hints_at_the_model(model: ScriptedModel) -> None:
    model.add_rule({"fault": {"kind": "status", "status": 404, "message": "model not found"}})
    with pytest.raises(ModelError) as err:
        await make_client(model).complete(role="coder", messages=user())
    assert err.value.kind == "request" and "model not found" in err.value.message
    assert "model name" in err.value.message and len(model.requests) == 1


async def test_unreachable_server_is_a_connection_error() -> None:
    with ScriptedModel() as server:
        settings = Settings(model=ModelSettings(provider="local", base_url=server.url, model="m"))
    client = OpenAIChatClient(resolve_provider(settings, {}), max_retries=1, backoff_base=0.01)
    with pytest.raises(ModelError) as err:
        await client.complete(role="coder", messages=user())
    assert err.value.kind == "connection" and "cannot reach local" in err.value.message


@pytest.mark.parametrize("stream", [False, True])
async def test_concurrency_limit_bounds_requests_in_flight(
    model: ScriptedModel, stream: bool
) -> None:
    model.add_rule({"reply": {"content": "ok"}, "delay_ms": 150})
    client = make_client(model, concurrency=2)
    roles = ["researcher", "coder", "reviewer", "coder", "coder", "reviewer"]
    replies = await asyncio.gather(
        *(
            client.complete(role=r, messages=user(str(i)), stream=stream)
            for i, r in enumerate(roles)
        )
    )
    assert [r.content for r in replies] == ["ok"] * 6
    assert model.max_overlap() == 2  # limited to 2, and the two slots were really used together


async def test_retry_sleep_releases_the_concurrency_slot(model: ScriptedModel) -> None:
    model.add_rule(
        {
            "match": {"last_contains": "limited"},
            "fault": {"kind": "status", "status": 429, "retry_after": 1},
            "times": 1,
        }
    )
    model.add_rule(OK)
    client = make_client(model, concurrency=1)
    limited = asyncio.create_task(client.complete(role="coder", messages=user("limited")))
    await wait_for(model, 1, finished=True)  # the first call got its 429 and is waiting
    other = await client.complete(role="coder", messages=user("other"))
    assert other.content == "recovered"
    assert (await limited).attempts == 2
    order = [r.messages[-1]["content"] for r in model.requests]
    assert order == ["limited", "other", "limited"]  # "other" ran while "limited" slept


async def test_cancellation_propagates_and_frees_the_slot(model: ScriptedModel) -> None:
    model.add_rule(
        {"match": {"last_contains": "slow"}, "reply": {"content": "x" * 500}, "delay_ms": 2000}
    )
    model.add_rule(OK)
    client = make_client(model, concurrency=1)
    slow = asyncio.create_task(client.complete(role="coder", messages=user("slow")))
    await wait_for(model, 1, finished=False)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    reply = await client.complete(role="coder", messages=user("fast"))
    assert reply.content == "recovered"


async def test_trickling_stream_outlives_the_timeout_because_tokens_keep_coming(
    model: ScriptedModel,
) -> None:
    # 11 chunks 150 ms apart: ~1.5 s in all, yet no gap comes near the 1 s timeout.
    model.add_rule({"reply": {"content": "x" * 24 * 9}, "chunk_delay_ms": 150})
    reply = await make_client(model, timeout=1.0).complete(role="coder", messages=user())
    assert reply.content == "x" * 216 and reply.attempts == 1
    (request,) = model.requests
    assert request.end is not None and request.end - request.start > 1.0


async def test_stream_that_stalls_past_the_timeout_is_retried(model: ScriptedModel) -> None:
    model.add_rule({"reply": {"content": "y" * 100}, "chunk_delay_ms": 1000, "times": 1})
    model.add_rule(OK)
    reply = await make_client(model, timeout=0.3).complete(role="coder", messages=user())
    assert reply.content == "recovered" and reply.attempts == 2


@pytest.mark.parametrize("stream", [False, True])
async def test_a_page_that_is_not_the_api_is_a_clear_error(
    model: ScriptedModel, stream: bool
) -> None:
    model.add_rule({"fault": {"kind": "raw", "body": "<html>login</html>"}})
    with pytest.raises(ModelError) as err:
        await make_client(model, max_retries=1).complete(
            role="coder", messages=user(), stream=stream
        )
    if stream:  # an event stream with no events: indistinguishable from a hang-up
        assert err.value.kind == "connection" and "after 0 chunks" in err.value.message
    else:
        assert err.value.kind == "bad_output" and "<html>login" in err.value.message
        assert "check the base URL" in err.value.message and len(model.requests) == 1


async def test_connection_error_names_the_underlying_cause(model: ScriptedModel) -> None:
    model.add_rule({"fault": {"kind": "drop"}})
    with pytest.raises(ModelError) as err:
        await make_client(model, max_retries=0).complete(role="researcher", messages=user())
    assert "gave up after 1 attempt; last error:" in err.value.message
    assert "Connection error." not in err.value.message  # the SDK's words say nothing


async def test_retry_after_as_an_http_date(model: ScriptedModel) -> None:
    past = "Wed, 21 Oct 2015 07:28:00 GMT"  # already passed: retry at once
    model.add_rule({"fault": {"kind": "status", "status": 503, "retry_after": past}, "times": 1})
    model.add_rule(OK)
    reply = await make_client(model).complete(role="coder", messages=user())
    assert reply.attempts == 2


async def test_from_settings_takes_the_limits_from_model_settings(model: ScriptedModel) -> None:
    model.add_rule({"fault": {"kind": "status", "status": 500}})
    settings = Settings(
        model=ModelSettings(provider="local", base_url=model.url, model="m", max_retries=2)
    )
    client = OpenAIChatClient.from_settings(settings, {}, backoff_base=0.01)
    assert client.policy.max_retries == 2 and client.timeout == settings.model.timeout_s
    with pytest.raises(ModelError, match="3 times"):
        await client.complete(role="coder", messages=user())
