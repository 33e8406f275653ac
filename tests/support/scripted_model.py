"""A scripted OpenAI-compatible model server for tests and benchmarks (stdlib only).

A real HTTP server on 127.0.0.1 that speaks ``POST /v1/chat/completions`` (plain JSON and SSE
streaming, tool calls, ``reasoning_content``, usage with cached tokens in both the DeepSeek and the
OpenAI field styles) and ``GET /v1/models``. Replies come from rules, first match wins::

    {"match": {"has_tool": "submit_plan", "contains": "...", "last_contains": "...",
               "last_role": "tool", "model": "..."},
     "reply": {"content": "...", "tool_calls": [{"name": "...", "arguments": {...} | "raw"}],
               "reasoning_content": "...", "finish_reason": "...",
               "usage": {"prompt_tokens": 1, "completion_tokens": 1, "cached_tokens": 0,
                         "style": "both" | "deepseek" | "openai"}},
     "fault": {"kind": "status", "status": 429, "retry_after": 1, "retry_after_ms": 50}
              | {"kind": "drop"} | {"kind": "truncate_stream"} | {"kind": "invalid_tool_json"}
              | {"kind": "raw", "status": 200, "content_type": "text/html", "body": "..."}
              | {"kind": "cut_arguments"},  # arguments cut at max_tokens, yet "tool_calls"
     "delay_ms": 200,        # before answering (plus the global latency_ms)
     "chunk_delay_ms": 50,   # between stream chunks: a model that trickles tokens
     "times": 1}

Server-wide behaviours of real local servers (constructor keywords, or keys of a rules file)::

    n_ctx=8192              # the window: /v1/models reports it (data[].meta.n_ctx), a request
                            # whose prompt + max_tokens passes it is answered 400, and a reply
                            # longer than max_tokens is cut with finish_reason "length"
    stream_usage=False      # streams carry no usage, whatever stream_options asks
    tools_need_tool_choice=True  # tools are dropped unless the request has tool_choice
    html_escape=True        # the prompt is HTML-escaped before the model sees it (rules,
                            # hooks and callable replies see `-&gt;` for `->`)

``reply`` may also be a callable ``request_json -> reply dict``. When no rule matches, the
``hook`` (if any) is asked; it returns a reply dict, a rule-shaped dict (with ``reply``/``fault``/
``delay_ms``) or None. Nothing matching is answered with HTTP 400 naming the last message, so a
test that forgot a rule fails at once with a readable error instead of retrying.

In process::

    with ScriptedModel(rules=[...], latency_ms=0) as model:
        client = openai.AsyncOpenAI(base_url=model.url, api_key="test")
        ...
        model.requests  # RecordedRequest list with monotonic start/end times

As a process (editor tests, benchmarks)::

    python tests/support/scripted_model.py --rules rules.json --port 0 --port-file F

This module must stay importable without pytest and without the package installed.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

logger = logging.getLogger("scripted_model")

Rule = dict[str, Any]
Hook = Callable[[dict[str, Any]], dict[str, Any] | None]

MODEL_IDS = ("scripted-model",)
CHARS_PER_TOKEN = 4
CACHE_UNIT_TOKENS = 64
STREAM_PIECE_CHARS = 24


@dataclass
class RecordedRequest:
    """One request as the server saw it. Times are ``time.monotonic()`` seconds."""

    index: int
    body: dict[str, Any]
    start: float
    end: float | None = None
    rule: int | None = None  # index of the rule that answered; None = hook or unmatched
    fault: str | None = None
    status: int = 200
    usage: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # as sent, names lower-cased

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def tool_names(self) -> list[str]:
        return [_tool_name(tool) for tool in self.body.get("tools") or []]


def max_overlap(requests: Iterable[RecordedRequest]) -> int:
    """The largest number of requests that were in flight at the same moment."""
    events: list[tuple[float, int]] = []
    for req in requests:
        events.append((req.start, 1))
        events.append((req.end if req.end is not None else math.inf, -1))
    # Ends sort before starts at the same instant: touching intervals do not overlap.
    events.sort(key=lambda item: (item[0], item[1]))
    current = best = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def _tool_name(tool: Mapping[str, Any]) -> str:
    function = tool.get("function") or {}
    return str(function.get("name", tool.get("name", "")))


def _text_of(message: Mapping[str, Any]) -> str:
    """Message text for matching: content (string or parts) plus tool-call arguments."""
    content = message.get("content")
    parts: list[str] = []
    if isinstance(content, str):
        parts.append(content)
    elif isinstance(content, list):
        parts.extend(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        parts.append(f"{function.get('name', '')} {function.get('arguments', '')}")
    return "\n".join(parts)


def rule_matches(match: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    messages = list(body.get("messages") or [])
    last = messages[-1] if messages else {}
    if "has_tool" in match:
        names = {_tool_name(tool) for tool in body.get("tools") or []}
        if match["has_tool"] not in names:
            return False
    if "contains" in match and not any(match["contains"] in _text_of(m) for m in messages):
        return False
    if "last_contains" in match and match["last_contains"] not in _text_of(last):
        return False
    if "last_role" in match and last.get("role") != match["last_role"]:
        return False
    return not ("model" in match and body.get("model") != match["model"])


def _escaped(message: Mapping[str, Any]) -> dict[str, Any]:
    # What a jinja chat template with autoescape does to every message's text.
    out = dict(message)
    if isinstance(out.get("content"), str):
        out["content"] = html.escape(out["content"], quote=True).replace("&#x27;", "&#39;")
    return out


def _ceil_tokens(chars: int) -> int:
    return max(1, math.ceil(chars / CHARS_PER_TOKEN))


class _PrefixCache:
    """Simulates a provider prefix cache over the serialized messages of earlier requests.

    Caches hand out whole units (64 tokens ~ 256 characters here), so the prefix is hashed in
    256-character blocks, each hash chained to the one before: the cached length is the number
    of leading blocks whose chained hash was seen before. O(length) per request, whatever the
    number of earlier requests (benchmarks send hundreds of megabyte-sized prompts).
    """

    BLOCK_CHARS = CACHE_UNIT_TOKENS * CHARS_PER_TOKEN

    def __init__(self) -> None:
        self._seen: set[int] = set()
        self._lock = threading.Lock()

    def lookup_and_store(self, serialized: str) -> int:
        size = self.BLOCK_CHARS
        chain: list[int] = []
        digest = 0
        for start in range(0, len(serialized) - size + 1, size):
            digest = hash((digest, serialized[start : start + size]))
            chain.append(digest)
        with self._lock:
            hits = 0
            for digest in chain:
                if digest not in self._seen:
                    break
                hits += 1
            self._seen.update(chain)
        return hits * CACHE_UNIT_TOKENS


def _usage_fields(prompt: int, completion: int, cached: int, style: str) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if style in ("both", "openai"):
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    if style in ("both", "deepseek"):
        usage["prompt_cache_hit_tokens"] = cached
        usage["prompt_cache_miss_tokens"] = prompt - cached
    return usage


def _normalize_tool_calls(calls: Sequence[Mapping[str, Any]], prefix: str) -> list[dict[str, Any]]:
    result = []
    for i, call in enumerate(calls):
        args = call.get("arguments", {})
        raw = args if isinstance(args, str) else json.dumps(args)
        result.append(
            {"id": call.get("id") or f"call_{prefix}_{i}", "name": call["name"], "arguments": raw}
        )
    return result


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 makes a burst of parallel coders wait ~1 s for a slot.
    request_queue_size = 128
    daemon_threads = True


class ScriptedModel:
    """The server. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(
        self,
        rules: Sequence[Rule] = (),
        *,
        hook: Hook | None = None,
        latency_ms: int = 0,
        usage_style: str = "both",
        host: str = "127.0.0.1",
        port: int = 0,
        n_ctx: int = 0,
        stream_usage: bool = True,
        tools_need_tool_choice: bool = False,
        html_escape: bool = False,
        models_gate: threading.Event | None = None,
    ) -> None:
        self._rules: list[Rule] = [dict(rule) for rule in rules]
        self._served: list[int] = [0] * len(self._rules)
        self.hook = hook
        self.latency_ms = latency_ms
        self.usage_style = usage_style
        self.n_ctx = n_ctx
        self.stream_usage = stream_usage
        self.tools_need_tool_choice = tools_need_tool_choice
        self.html_escape = html_escape
        # GET /v1/models waits for this event (at most 60 s): a test holds a client that is
        # learning the window, to act in between.
        self.models_gate = models_gate
        self.model_lists = 0  # GET /v1/models answered
        self._requests: list[RecordedRequest] = []
        self.errors: list[str] = []  # exceptions raised by hooks / callable replies
        self._lock = threading.Lock()
        self._cache = _PrefixCache()
        self._server = _Server((host, port), _Handler)
        self._server.daemon_threads = True
        self._server.scripted = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ScriptedModel:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll
                name="scripted-model",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ScriptedModel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting -------------------------------------------------------------------------
    def add_rule(self, rule: Rule, *, first: bool = False) -> None:
        with self._lock:
            if first:
                self._rules.insert(0, dict(rule))
                self._served.insert(0, 0)
            else:
                self._rules.append(dict(rule))
                self._served.append(0)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def max_overlap(self) -> int:
        return max_overlap(self.requests)

    # -- used by the handler ---------------------------------------------------------------
    def _begin(
        self, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> RecordedRequest:
        with self._lock:
            record = RecordedRequest(
                index=len(self._requests),
                body=body,
                start=time.monotonic(),
                headers={k.lower(): v for k, v in (headers or {}).items()},
            )
            self._requests.append(record)
            return record

    def _choose(self, body: dict[str, Any], record: RecordedRequest) -> Rule | None:
        with self._lock:
            for i, rule in enumerate(self._rules):
                times = rule.get("times")
                if times is not None and self._served[i] >= times:
                    continue
                if rule_matches(rule.get("match") or {}, body):
                    self._served[i] += 1
                    record.rule = i
                    return rule
        if self.hook is not None:
            answer = self.hook(body)
            if answer is not None:
                is_rule = any(key in answer for key in ("reply", "fault", "delay_ms"))
                return answer if is_rule else {"reply": answer}
        return None

    def model_view(self, body: dict[str, Any]) -> dict[str, Any]:
        """The request as the model sees it after the server's own handling."""
        view = dict(body)
        if self.tools_need_tool_choice and "tool_choice" not in view:
            view.pop("tools", None)  # llama-cpp-python: no tool_choice, no tools
        if self.html_escape:
            view["messages"] = [_escaped(m) for m in view.get("messages") or []]
        return view

    def prompt_tokens(self, body: Mapping[str, Any]) -> int:
        serialized = json.dumps(
            body.get("messages") or [], ensure_ascii=False, separators=(",", ":")
        )
        return _ceil_tokens(len(serialized) + len(json.dumps(body.get("tools") or [])))

    def _usage(self, body: dict[str, Any], reply: Mapping[str, Any]) -> dict[str, Any]:
        serialized = json.dumps(
            body.get("messages") or [], ensure_ascii=False, separators=(",", ":")
        )
        request_chars = len(serialized) + len(json.dumps(body.get("tools") or []))
        cached = self._cache.lookup_and_store(serialized)
        produced = (
            len(reply.get("content") or "")
            + len(reply.get("reasoning_content") or "")
            + sum(len(c["arguments"]) + len(c["name"]) for c in reply["tool_calls"])
        )
        given = dict(reply.get("usage") or {})
        prompt = int(given.get("prompt_tokens", _ceil_tokens(request_chars)))
        completion = int(given.get("completion_tokens", _ceil_tokens(produced)))
        cached = min(int(given.get("cached_tokens", cached)), prompt)
        return _usage_fields(prompt, completion, cached, given.get("style", self.usage_style))


class _Handler(BaseHTTPRequestHandler):
    server_version = "ScriptedModel/1.0"
    # HTTP/1.0: a stream ends when the connection closes, so a cut-short stream looks exactly
    # like a provider that hung up mid-answer (no finish_reason, no [DONE]).
    protocol_version = "HTTP/1.0"

    @property
    def scripted(self) -> ScriptedModel:
        return self.server.scripted  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            if self.scripted.models_gate is not None:
                self.scripted.models_gate.wait(60)
            self.scripted.model_lists += 1
            data: list[dict[str, Any]] = [
                {"id": m, "object": "model", "owned_by": "scripted"} for m in MODEL_IDS
            ]
            if self.scripted.n_ctx:
                for entry in data:
                    entry["meta"] = {"n_ctx": self.scripted.n_ctx}
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_error(404, f"no route for GET {self.path}")

    def do_POST(self) -> None:
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send_error(404, f"no route for POST {self.path}")
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError as exc:
            self._send_error(400, f"request body is not JSON: {exc}")
            return
        record = self.scripted._begin(body, dict(self.headers.items()))
        self._record = record
        try:
            self._answer(body, record)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout): nothing to do, the request is still recorded.
            record.fault = record.fault or "client_disconnected"
        except Exception as exc:
            # A bug in a test's hook or rule: answer 400 (not retried) and keep the reason where
            # the test can see it, instead of a hang-up the client would retry.
            logger.exception("scripted reply failed")
            record.fault, record.status = "script_error", 400
            self.scripted.errors.append(f"request {record.index}: {type(exc).__name__}: {exc}")
            if not self._responded:
                self._send_error(400, f"the scripted reply raised {type(exc).__name__}: {exc}")
        finally:
            self._mark_end()

    _responded = False
    _record: RecordedRequest | None = None

    def _mark_end(self) -> None:
        # Called just before the last bytes go out, so a client that has read the whole answer
        # always sees ``end`` set (the handler thread may still be running its epilogue).
        if self._record is not None and self._record.end is None:
            self._record.end = time.monotonic()

    def send_response(self, code: int, message: str | None = None) -> None:
        self._responded = True
        super().send_response(code, message)

    # -- answering -------------------------------------------------------------------------
    def _answer(self, body: dict[str, Any], record: RecordedRequest) -> None:
        n_ctx, max_tokens = self.scripted.n_ctx, body.get("max_tokens")
        if n_ctx:
            asked = self.scripted.prompt_tokens(body) + int(max_tokens or 0)
            if asked > n_ctx:
                record.status, record.fault = 400, "context_exceeded"
                self._send_error(
                    400,
                    f"Requested tokens ({asked}) exceed context window of {n_ctx}",
                )
                return
        body = self.scripted.model_view(body)
        rule = self.scripted._choose(body, record)
        if rule is None:
            last = (body.get("messages") or [{}])[-1]
            record.status = 400
            self._send_error(
                400,
                "no scripted rule matched the request; last message "
                f"({last.get('role')}): {_text_of(last)[:200]!r}",
            )
            return
        delay = (self.scripted.latency_ms + int(rule.get("delay_ms", 0))) / 1000
        if delay:
            time.sleep(delay)
        fault = dict(rule.get("fault") or {})
        record.fault = fault.get("kind")
        if fault.get("kind") == "status":
            record.status = int(fault.get("status", 500))
            self._send_status_fault(record.status, fault)
            return
        if fault.get("kind") == "drop":
            self._drop()
            return
        if fault.get("kind") == "raw":
            self._send_raw(fault)
            return
        reply_spec = rule.get("reply") or {}
        if callable(reply_spec):
            reply_spec = reply_spec(body) or {}
        reply = self._build_reply(reply_spec, fault, body, record)
        _cap(reply, max_tokens, cut_arguments=fault.get("kind") == "cut_arguments")
        record.usage = self.scripted._usage(body, reply)
        if body.get("stream"):
            truncate = fault.get("kind") == "truncate_stream"
            pause = int(rule.get("chunk_delay_ms", 0)) / 1000
            self._send_stream(reply, record, body, truncate=truncate, pause=pause)
        elif fault.get("kind") == "truncate_stream":
            self._send_truncated_json(reply, record)
        else:
            self._send_json(200, self._completion(reply, record))

    def _build_reply(
        self,
        spec: Mapping[str, Any],
        fault: Mapping[str, Any],
        body: Mapping[str, Any],
        record: RecordedRequest,
    ) -> dict[str, Any]:
        calls = _normalize_tool_calls(spec.get("tool_calls") or [], str(record.index))
        if fault.get("kind") == "invalid_tool_json":
            if not calls:
                tools = [_tool_name(t) for t in body.get("tools") or []] or ["submit_plan"]
                calls = [{"id": f"call_{record.index}_0", "name": tools[0], "arguments": "{}"}]
            for call in calls:
                # Cut the JSON short the way a model that ran out of tokens does.
                call["arguments"] = call["arguments"][:-1] + ', "oops": '
        finish = spec.get("finish_reason") or ("tool_calls" if calls else "stop")
        return {
            "content": spec.get("content") or "",
            "tool_calls": calls,
            "reasoning_content": spec.get("reasoning_content"),
            "finish_reason": finish,
            "usage": spec.get("usage"),
        }

    def _completion(self, reply: Mapping[str, Any], record: RecordedRequest) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply["content"] or None}
        if reply["reasoning_content"] is not None:
            message["reasoning_content"] = reply["reasoning_content"]
        if reply["tool_calls"]:
            message["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for c in reply["tool_calls"]
            ]
        if not reply["tool_calls"] and message["content"] is None:
            message["content"] = ""
        return {
            "id": f"chatcmpl-{record.index}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": record.model or MODEL_IDS[0],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": reply["finish_reason"],
                    "logprobs": None,
                }
            ],
            "usage": record.usage,
        }

    def _chunks(self, reply: Mapping[str, Any], record: RecordedRequest) -> list[dict[str, Any]]:
        def piece(text: str) -> list[str]:
            return [
                text[i : i + STREAM_PIECE_CHARS] for i in range(0, len(text), STREAM_PIECE_CHARS)
            ]

        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        deltas += [{"reasoning_content": p} for p in piece(reply["reasoning_content"] or "")]
        deltas += [{"content": p} for p in piece(reply["content"])]
        for i, call in enumerate(reply["tool_calls"]):
            deltas.append(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["name"], "arguments": ""},
                        }
                    ]
                }
            )
            deltas += [
                {"tool_calls": [{"index": i, "function": {"arguments": p}}]}
                for p in piece(call["arguments"])
            ]
        base = {
            "id": f"chatcmpl-{record.index}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": record.model or MODEL_IDS[0],
        }
        chunks = [
            {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
        ]
        chunks.append(
            {
                **base,
                "choices": [{"index": 0, "delta": {}, "finish_reason": reply["finish_reason"]}],
            }
        )
        return chunks

    def _send_stream(
        self,
        reply: Mapping[str, Any],
        record: RecordedRequest,
        body: Mapping[str, Any],
        *,
        truncate: bool,
        pause: float = 0.0,
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        chunks = self._chunks(reply, record)
        if truncate:
            # Keep the opening chunks, lose the finish_reason, the usage and [DONE].
            chunks = chunks[: max(1, min(3, len(chunks) - 1))]
        elif self.scripted.stream_usage and (body.get("stream_options") or {}).get("include_usage"):
            chunks.append(
                {
                    **{k: chunks[0][k] for k in ("id", "object", "created", "model")},
                    "choices": [],
                    "usage": record.usage,
                }
            )
        for i, chunk in enumerate(chunks):
            if pause and i:
                time.sleep(pause)  # a slow model: tokens trickle in
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        if truncate:
            self._drop()
            return
        self._mark_end()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _send_raw(self, fault: Mapping[str, Any]) -> None:
        """Whatever a misconfigured proxy might send: any status, content type and body."""
        data = str(fault.get("body", "")).encode()
        self.send_response(int(fault.get("status", 200)))
        self.send_header("Content-Type", str(fault.get("content_type", "text/html")))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self._mark_end()
        self.wfile.write(data)

    def _send_truncated_json(self, reply: Mapping[str, Any], record: RecordedRequest) -> None:
        data = json.dumps(self._completion(reply, record)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self._mark_end()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self._drop()

    def _send_status_fault(self, status: int, fault: Mapping[str, Any]) -> None:
        headers = {}
        if "retry_after" in fault:
            headers["Retry-After"] = str(fault["retry_after"])
        if "retry_after_ms" in fault:
            headers["retry-after-ms"] = str(fault["retry_after_ms"])
        default = {429: "rate limited (scripted)", 401: "invalid api key (scripted)"}
        message = fault.get("message") or default.get(status, f"scripted status {status}")
        self._send_error(status, message, headers)

    def _send_error(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        kind = "invalid_request_error" if status < 500 else "server_error"
        self._send_json(
            status, {"error": {"message": message, "type": kind, "code": status}}, headers
        )

    def _send_json(
        self, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self._mark_end()
        self.wfile.write(data)

    def _drop(self) -> None:
        """Hang up without finishing the response (RST where the OS allows it)."""
        self._mark_end()
        self.close_connection = True
        try:
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _cap(reply: dict[str, Any], max_tokens: Any, *, cut_arguments: bool) -> None:
    """Cut what the reply says at ``max_tokens`` as a server does: content first, then the
    arguments; finish_reason "length" (or "tool_calls" for ``cut_arguments``, as
    llama-cpp-python reports a tool call cut at the limit)."""
    limit = int(max_tokens or 0) * CHARS_PER_TOKEN
    if cut_arguments:
        for call in reply["tool_calls"]:
            call["arguments"] = call["arguments"][: max(1, len(call["arguments"]) // 2)]
        reply["finish_reason"] = "tool_calls"
        reply["usage"] = {**(reply.get("usage") or {}), "completion_tokens": int(max_tokens or 1)}
        return
    if not limit:
        return
    content = reply["content"]
    if len(content) > limit:
        reply["content"] = content[:limit]
        reply["tool_calls"] = []
        reply["finish_reason"] = "length"
        return
    room = limit - len(content)
    for call in reply["tool_calls"]:
        if len(call["arguments"]) > room:
            call["arguments"] = call["arguments"][: max(0, room)]
            reply["finish_reason"] = "length"
        room = max(0, room - len(call["arguments"]))


def load_rules(path: Path) -> tuple[list[Rule], dict[str, Any]]:
    """A rules file is a JSON list of rules, or ``{"rules": [...], "latency_ms": N}``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, list):
        return data, {}
    if isinstance(data, dict) and isinstance(data.get("rules", []), list):
        return list(data.get("rules", [])), {k: v for k, v in data.items() if k != "rules"}
    raise ValueError(f"{path}: expected a JSON list of rules or an object with 'rules'")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a scripted OpenAI-compatible model.")
    parser.add_argument("--rules", type=Path, help="JSON file with the rules")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, help="write the bound port here when ready")
    parser.add_argument("--latency-ms", type=int, default=None)
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="scripted-model: %(message)s",
    )
    rules, options = load_rules(args.rules) if args.rules else ([], {})
    latency = args.latency_ms if args.latency_ms is not None else int(options.get("latency_ms", 0))
    model = ScriptedModel(
        rules,
        latency_ms=latency,
        host=args.host,
        port=args.port,
        usage_style=str(options.get("usage_style", "both")),
        n_ctx=int(options.get("n_ctx", 0)),
        stream_usage=bool(options.get("stream_usage", True)),
        tools_need_tool_choice=bool(options.get("tools_need_tool_choice", False)),
        html_escape=bool(options.get("html_escape", False)),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with model:
        if args.port_file:
            # Write then rename so a reader polling the file never sees a half-written port.
            tmp = args.port_file.with_name(args.port_file.name + ".tmp")
            tmp.write_text(str(model.port), encoding="utf-8")
            os.replace(tmp, args.port_file)
        print(model.url, file=sys.stderr, flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
