"""StreamAssembler on chunks parsed by the real SDK types (shapes seen from real providers)."""

from __future__ import annotations

from typing import Any

from openai.types.chat import ChatCompletionChunk

from lsp_agent.agents.usage import StreamAssembler, Usage


def chunk(choices: list[dict[str, Any]], **extra: Any) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": choices,
            **extra,
        }
    )


def delta(d: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"index": 0, "delta": d, "finish_reason": finish, **extra}


def test_fragments_of_content_reasoning_and_two_tool_calls_are_joined() -> None:
    assembler = StreamAssembler()
    pieces = [
        delta({"role": "assistant", "reasoning_content": "think "}),
        delta({"reasoning_content": "more"}),
        delta({"content": "Hel"}),
        delta({"content": "lo"}),
        delta(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "a",
                        "type": "function",
                        "function": {"name": "read_file", "arguments": '{"pa'},
                    }
                ]
            }
        ),
        delta(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "b",
                        "type": "function",
                        "function": {"name": "grep", "arguments": "{}"},
                    }
                ]
            }
        ),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": 'th": "x.py"}'}}]}),
        delta({}, "tool_calls"),
    ]
    for piece in pieces:
        assembler.absorb(chunk([piece]))
    assembler.absorb(
        chunk(
            [],
            usage={
                "prompt_tokens": 10,
                "completion_tokens": 4,
                "prompt_cache_hit_tokens": 8,
                "total_tokens": 14,
            },
        )
    )
    assert (assembler.content, assembler.reasoning) == ("Hello", "think more")
    calls = assembler.tool_calls()
    assert [(c.id, c.name, c.parsed) for c in calls] == [
        ("a", "read_file", {"path": "x.py"}),
        ("b", "grep", {}),
    ]
    assert assembler.finish_reason == "tool_calls" and assembler.chunks == 9
    assert assembler.usage == Usage(10, 4, 8, 1, attempts=1)


def test_usage_inside_the_final_choice_kimi_style() -> None:
    assembler = StreamAssembler()
    assembler.absorb(chunk([delta({"content": "ok"})]))
    usage = {"prompt_tokens": 300, "completion_tokens": 2, "cached_tokens": 256}
    assembler.absorb(chunk([delta({}, "stop", usage=usage)]))
    assert assembler.usage == Usage(300, 2, 256, 1, attempts=1)


def test_a_stream_without_finish_reason_is_visible_as_such() -> None:
    assembler = StreamAssembler()
    assembler.absorb(chunk([delta({"content": "<<<<<<< SEARCH"})]))
    assert assembler.finish_reason is None and assembler.content == "<<<<<<< SEARCH"
    # No usage reported: the call still counts.
    assert assembler.usage == Usage(requests=1, attempts=1)
