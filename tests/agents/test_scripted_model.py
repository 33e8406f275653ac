"""The scripted model server on its own, over raw HTTP (urllib): rules, faults, usage, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.scripted_model import RecordedRequest, ScriptedModel, max_overlap

SCRIPT = Path(__file__).resolve().parents[1] / "support" / "scripted_model.py"


def post(model: ScriptedModel, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        f"{model.url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


def sse_chunks(raw: bytes) -> list[Any]:
    events = [line[len("data: ") :] for line in raw.decode().split("\n\n") if line]
    assert events[-1] == "[DONE]"
    return [json.loads(event) for event in events[:-1]]


def test_first_matching_rule_wins_and_times_limits_a_rule() -> None:
    rules = [
        {"match": {"last_contains": "hello"}, "reply": {"content": "first"}, "times": 1},
        {"match": {"last_contains": "hello"}, "reply": {"content": "second"}},
        {"reply": {"content": "fallback"}},
    ]
    with ScriptedModel(rules) as model:
        answers = [json.loads(post(model, chat(text))[2]) for text in ("hello", "hello", "bye")]
    contents = [a["choices"][0]["message"]["content"] for a in answers]
    assert contents == ["first", "second", "fallback"]
    assert [r.rule for r in model.requests] == [0, 1, 2]


def test_match_on_tools_roles_and_any_message() -> None:
    tool = {"type": "function", "function": {"name": "submit_plan", "parameters": {}}}
    rules = [
        {"match": {"has_tool": "submit_plan", "last_role": "tool"}, "reply": {"content": "a"}},
        {"match": {"contains": "PLAN"}, "reply": {"content": "b"}},
    ]
    body = {
        "model": "m",
        "tools": [tool],
        "messages": [
            {"role": "system", "content": "the PLAN"},
            {"role": "tool", "tool_call_id": "x", "content": "result"},
        ],
    }
    with ScriptedModel(rules) as model:
        with_tool = json.loads(post(model, body)[2])
        without_tool = json.loads(post(model, {**body, "tools": []})[2])
    assert with_tool["choices"][0]["message"]["content"] == "a"
    assert without_tool["choices"][0]["message"]["content"] == "b"


def test_unmatched_request_is_a_400_naming_the_last_message() -> None:
    with ScriptedModel([{"match": {"contains": "nope"}, "reply": {"content": "x"}}]) as model:
        status, _, raw = post(model, chat("what is this"))
    assert status == 400
    assert "what is this" in json.loads(raw)["error"]["message"]


def test_hook_answers_when_no_rule_matches() -> None:
    def hook(body: dict[str, Any]) -> dict[str, Any] | None:
        text = body["messages"][-1]["content"]
        return {"content": text.upper()} if text.startswith("echo") else None

    with ScriptedModel(
        [{"match": {"contains": "rule"}, "reply": {"content": "r"}}], hook=hook
    ) as m:
        echoed = json.loads(post(m, chat("echo me"))[2])
        status, _, _ = post(m, chat("silence"))
    assert echoed["choices"][0]["message"]["content"] == "ECHO ME"
    assert status == 400


def test_tool_calls_reasoning_and_both_usage_styles_non_stream() -> None:
    reply = {
        "content": "",
        "reasoning_content": "let me think",
        "tool_calls": [
            {"name": "submit_plan", "arguments": {"targets": []}},
            {"name": "x", "arguments": "raw"},
        ],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 20, "cached_tokens": 640},
    }
    with ScriptedModel([{"reply": reply}]) as model:
        data = json.loads(post(model, chat("go"))[2])
    message = data["choices"][0]["message"]
    assert data["choices"][0]["finish_reason"] == "tool_calls"
    assert message["reasoning_content"] == "let me think"
    calls = message["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["submit_plan", "x"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"targets": []}
    assert calls[1]["function"]["arguments"] == "raw"
    assert len({c["id"] for c in calls}) == 2
    usage = data["usage"]
    assert usage["prompt_cache_hit_tokens"] == 640
    assert usage["prompt_cache_miss_tokens"] == 360
    assert usage["prompt_tokens_details"]["cached_tokens"] == 640


def test_stream_reassembles_to_the_same_reply_and_ends_with_usage_and_done() -> None:
    reply = {
        "content": "some longer content that spans several chunks of the stream",
        "reasoning_content": "thinking that also spans chunks",
        "tool_calls": [{"name": "f", "arguments": {"path": "a/b.py", "n": 3}}],
    }
    with ScriptedModel([{"reply": reply}]) as model:
        status, headers, raw = post(
            model, chat("go", stream=True, stream_options={"include_usage": True})
        )
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    chunks = sse_chunks(raw)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == reply["content"]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == reply["reasoning_content"]
    args = "".join(
        tc["function"].get("arguments") or "" for d in deltas for tc in d.get("tool_calls", [])
    )
    assert json.loads(args) == {"path": "a/b.py", "n": 3}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] > 0


def test_default_cached_tokens_follow_the_longest_common_prefix() -> None:
    stable = "x" * 4000  # ~1000 tokens of byte-identical prefix
    first = {
        "model": "m",
        "messages": [{"role": "system", "content": stable}, {"role": "user", "content": "a"}],
    }
    second = {
        "model": "m",
        "messages": [{"role": "system", "content": stable}, {"role": "user", "content": "b"}],
    }
    changed = {"model": "m", "messages": [{"role": "system", "content": "y" + stable}]}
    with ScriptedModel([{"reply": {"content": "ok"}}]) as model:
        usages = [json.loads(post(model, body)[2])["usage"] for body in (first, second, changed)]
    assert usages[0]["prompt_tokens_details"]["cached_tokens"] == 0
    cached = usages[1]["prompt_tokens_details"]["cached_tokens"]
    assert cached % 64 == 0 and 960 <= cached <= usages[1]["prompt_tokens"]
    assert usages[2]["prompt_cache_hit_tokens"] == 0  # a change at the front loses everything


def test_usage_style_can_be_one_provider_only() -> None:
    with ScriptedModel([{"reply": {"content": "ok", "usage": {"style": "deepseek"}}}]) as model:
        deepseek = json.loads(post(model, chat("a"))[2])["usage"]
    with ScriptedModel([{"reply": {"content": "ok"}}], usage_style="openai") as model:
        openai_style = json.loads(post(model, chat("a"))[2])["usage"]
    assert "prompt_cache_hit_tokens" in deepseek and "prompt_tokens_details" not in deepseek
    assert "prompt_tokens_details" in openai_style and "prompt_cache_hit_tokens" not in openai_style


def test_status_fault_carries_retry_after_headers() -> None:
    fault = {"kind": "status", "status": 429, "retry_after": 2, "retry_after_ms": 1500}
    with ScriptedModel([{"fault": fault, "times": 1}, {"reply": {"content": "ok"}}]) as model:
        status, headers, raw = post(model, chat("a"))
        status_after, _, _ = post(model, chat("a"))
    assert status == 429 and status_after == 200
    assert headers["Retry-After"] == "2" and headers["retry-after-ms"] == "1500"
    assert json.loads(raw)["error"]["code"] == 429


def test_drop_and_truncate_faults_end_the_connection_early() -> None:
    rules = [
        {"match": {"last_contains": "drop"}, "fault": {"kind": "drop"}},
        {
            "match": {"last_contains": "cut"},
            "fault": {"kind": "truncate_stream"},
            "reply": {"content": "abc" * 50},
        },
    ]
    with ScriptedModel(rules) as model:
        with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
            post(model, chat("drop"))
        _, _, raw = post(model, chat("cut", stream=True))
    text = raw.decode()
    assert "[DONE]" not in text and '"finish_reason": "stop"' not in text
    assert text.startswith("data: ")
    assert [r.fault for r in model.requests] == ["drop", "truncate_stream"]


def test_invalid_tool_json_fault_corrupts_the_arguments() -> None:
    rule = {
        "fault": {"kind": "invalid_tool_json"},
        "reply": {"tool_calls": [{"name": "f", "arguments": {"a": 1}}]},
    }
    with ScriptedModel([rule]) as model:
        data = json.loads(post(model, chat("a"))[2])
    raw_args = data["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw_args)


def test_requests_are_recorded_with_times_that_show_overlap() -> None:
    with ScriptedModel([{"reply": {"content": "ok"}, "delay_ms": 150}]) as model:
        threads = [threading.Thread(target=post, args=(model, chat(str(i)))) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    requests = model.requests
    assert len(requests) == 3 and all(r.end is not None and r.end > r.start for r in requests)
    assert model.max_overlap() >= 2


def test_max_overlap_counts_only_simultaneous_intervals() -> None:
    def rec(start: float, end: float) -> RecordedRequest:
        return RecordedRequest(index=0, body={}, start=start, end=end)

    assert max_overlap([rec(0, 1), rec(1, 2), rec(2, 3)]) == 1
    assert max_overlap([rec(0, 3), rec(1, 2), rec(1.5, 4), rec(3.5, 5)]) == 3


def test_models_endpoint() -> None:
    with ScriptedModel() as model, urllib.request.urlopen(f"{model.url}/models", timeout=5) as r:
        data = json.loads(r.read())
    assert data["object"] == "list" and data["data"][0]["id"] == "scripted-model"


def test_cli_serves_rules_from_a_file_and_writes_its_port(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"reply": {"content": "from file"}}]}))
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPT),
            "--rules",
            str(rules),
            "--port",
            "0",
            "--port-file",
            str(port_file),
        ],
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(200):
            if port_file.exists():
                break
            time.sleep(0.05)
        port = int(port_file.read_text())
        body = json.dumps(chat("hi")).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions", data=body, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            data = json.loads(response.read())
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert data["choices"][0]["message"]["content"] == "from file"
    assert process.returncode == 0


def test_a_failing_hook_is_a_400_with_the_reason_not_a_hang_up() -> None:
    def hook(body: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("targets")

    with ScriptedModel(hook=hook) as model:
        status, _, raw = post(model, chat("x"))
    assert status == 400 and "KeyError" in json.loads(raw)["error"]["message"]
    assert model.errors == ["request 0: KeyError: 'targets'"]
    assert model.requests[0].fault == "script_error"


def test_cached_prefix_is_counted_in_whole_units_against_any_earlier_request() -> None:
    a = "a" * 3000
    b = "b" * 3000
    bodies = [
        {"messages": [{"role": "system", "content": a}]},
        {"messages": [{"role": "system", "content": b}]},
        {"messages": [{"role": "system", "content": a + "more"}]},  # shares with the 1st only
        {"messages": [{"role": "system", "content": b[:1000]}]},  # a prefix of the 2nd
    ]
    with ScriptedModel([{"reply": {"content": "ok"}}]) as model:
        cached = [
            json.loads(post(model, {"model": "m", **body})[2])["usage"]["prompt_cache_hit_tokens"]
            for body in bodies
        ]
    # 3,000 identical characters after the 36-character JSON lead-in: 11 whole 256-char units.
    assert cached[:3] == [0, 0, 11 * 64]
    assert cached[3] == (1000 + 36) // 256 * 64
