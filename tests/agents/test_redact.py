"""lsp_agent/redact.py: reversible redaction (placeholders, restore, cache) and log scrubbing."""

from __future__ import annotations

import re

import pytest

from lsp_agent import redact
from lsp_agent.agents.usage import ModelReply, ToolCall
from lsp_agent.redact import PLACEHOLDER, REDACTED, Redactor, clip, scrub, scrub_long

OPENAI = "sk-proj-abcdefghijklmnopqrstuvwx12345"
AWS = "AKIAIOSFODNN7EXAMPLE"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
SOURCE = (
    f'OPENAI_API_KEY = "{OPENAI}"\n'
    f'AWS_ACCESS_KEY_ID = "{AWS}"\n'
    'HEADERS = {"Authorization": "Bearer tok_0123456789abcdef"}\n'
    'db_password: "hunter2hunter2"\n'
    f'assert sha256(b"test").hexdigest() == "{SHA}"\n'
    "token = get_token()\n"
    "def add(a, b):\n    return a + b\n"
)


def test_redact_replaces_every_shape_and_restore_is_exact():
    r = Redactor(salt=b"s" * 32)
    out = r.redact(SOURCE)
    for secret in (OPENAI, AWS, "tok_0123456789abcdef", "hunter2hunter2", SHA):
        assert secret not in out
    assert len(PLACEHOLDER.findall(out)) == 5 and r.known == 5
    # What is not a secret survives byte for byte, names and schemes included.
    for kept in ('OPENAI_API_KEY = "«', "Bearer «", 'db_password: "«', "token = get_token()"):
        assert kept in out
    assert r.restore(out) == SOURCE
    assert r.redact(out) == out  # idempotent: a placeholder never looks like a secret


def test_placeholders_are_deterministic_per_salt_and_secret():
    a, b = Redactor(salt=b"a" * 32), Redactor(salt=b"a" * 32)
    assert a.redact(SOURCE) == b.redact(SOURCE)
    assert a.redact(f"x = '{OPENAI}'") == f"x = '{redact.placeholder(OPENAI, b'a' * 32)}'"
    other = Redactor(salt=b"b" * 32).redact(SOURCE)
    assert other != a.redact(SOURCE)  # keyed: a placeholder does not reveal a guessable hash
    assert other.count("«redacted:") == 5


def test_literal_secrets_longest_first_and_short_ones_ignored():
    r = Redactor(["live-key-123456", "live-key-123456-extended", "abc"], salt=b"k" * 32)
    text = "a live-key-123456-extended b live-key-123456 c abc"
    out = r.redact(text)
    assert "live-key" not in out and out.endswith(" c abc")
    assert r.restore(out) == text


def test_restore_leaves_unknown_placeholders_and_reports_them():
    r = Redactor(salt=b"s" * 32)
    known = r.redact(f"k = '{OPENAI}'")
    invented = "«redacted:0123456789abcdef»"
    assert r.restore(known + invented) == f"k = '{OPENAI}'" + invented
    assert r.unknown_placeholders(known + invented) == [invented]


def test_messages_redacted_except_system_and_replies_restored():
    r = Redactor(salt=b"s" * 32)
    messages = [
        {"role": "system", "content": f"fixed {SHA}"},
        {"role": "user", "content": SOURCE},
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": f"saw {AWS}",
            "tool_calls": [
                {"id": "1", "type": "function", "function": {"name": "grep", "arguments": AWS}}
            ],
        },
        {"role": "tool", "tool_call_id": "1", "content": f"settings.py:2: {AWS}"},
    ]
    out = r.redact_messages(messages)
    assert out[0] == messages[0]
    assert AWS not in str(out[1:]) and OPENAI not in str(out)
    assert messages[1]["content"] == SOURCE  # the history keeps the real text
    ph = PLACEHOLDER.search(out[3]["content"]).group(0)
    reply = ModelReply(
        content=f"x {ph}",
        reasoning_content=ph,
        tool_calls=[ToolCall("c", "grep", f'{{"pattern": "{ph}"}}', {"pattern": [ph]})],
    )
    r.restore_reply(reply)
    assert reply.content == f"x {AWS}" and reply.reasoning_content == AWS
    assert reply.tool_calls[0].arguments == f'{{"pattern": "{AWS}"}}'
    assert reply.tool_calls[0].parsed == {"pattern": [AWS]}


def test_long_texts_are_redacted_once_per_process(monkeypatch):
    redact.clear_cache()
    calls = []
    real = redact._redact
    monkeypatch.setattr(redact, "_redact", lambda *a: calls.append(1) or real(*a))
    big = SOURCE * 200
    assert len(big) >= redact.CACHE_MIN_CHARS
    first, second = Redactor(salt=b"s" * 32), Redactor(salt=b"s" * 32)
    out = first.redact(big)
    assert second.redact("".join([big[:5], big[5:]])) == out  # an equal copy hits the cache
    assert len(calls) == 1
    # The cached pairs reach every redactor, so each can restore what it sent.
    assert second.restore(out) == big and second.known == 5
    assert Redactor(salt=b"t" * 32).redact(big) != out and len(calls) == 2
    assert scrub_long(big) == scrub(big) == scrub_long(big)  # the log scrub shares the cache
    assert len(calls) == 3


def test_clip_never_splits_a_placeholder():
    r = Redactor(salt=b"s" * 32)
    line = r.redact("x" * 20 + f" {OPENAI} tail")
    start, end = line.index("«"), line.index("»") + 1
    for limit in (start + 1, start + 5, start + 12, end - 1):
        assert clip(line, limit) == line[:start]
    for limit in (start, end, len(line)):
        assert clip(line, limit) == line[:limit]


def test_scrub_keeps_its_behaviour_for_logs():
    text = (
        "key sk-abcdefghijklmnop1234 auth Bearer abc.def-ghi_123456 "
        "hex 0123456789abcdef0123456789abcdef0123 api_key=zzzzyyyyxxxx1234 plain MYKEYVALUE"
    )
    out = scrub(text, ["MYKEYVALUE"])
    assert out.count(REDACTED) == 5 and "Bearer " in out and "api_key=" in out
    escaped = scrub('{"a": "pass\\"word"}', ['pass"word'])
    assert escaped == '{"a": "' + REDACTED + '"}'


@pytest.mark.parametrize(
    "text",
    [
        "ordinary words and def f(x): return 1",
        "token = get_token()",
        "secret_key: str",
        "task-abcdefghijk",  # "sk-" inside a word
        "x" + "0123456789abcdef" * 2,  # hex continuing a word
        "0123456789abcdef" * 2 + "g",
        "tokens == 12345678",
    ],
)
def test_code_that_only_resembles_a_secret_is_left_alone(text):
    assert scrub(text) == text
    assert Redactor(salt=b"s" * 32).redact(text) == text


def test_default_salt_is_stored_once_and_private(tmp_path, monkeypatch):
    monkeypatch.setenv("LSP_AGENT_CACHE_DIR", str(tmp_path))
    redact.default_salt.cache_clear()
    try:
        salt = redact.default_salt()
        stored = tmp_path / "redact.salt"
        assert stored.read_bytes() == salt and len(salt) == 32
        assert stored.stat().st_mode & 0o077 == 0
        redact.default_salt.cache_clear()
        assert redact.default_salt() == salt
    finally:
        redact.default_salt.cache_clear()
    assert re.fullmatch(r"«redacted:[0-9a-f]{16}»", redact.placeholder("x", salt))


def test_a_damaged_salt_file_falls_back_to_a_per_process_salt(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LSP_AGENT_CACHE_DIR", str(tmp_path))
    (tmp_path / "redact.salt").write_bytes(b"abc")
    redact.default_salt.cache_clear()
    try:
        salt = redact.default_salt()
    finally:
        redact.default_salt.cache_clear()
    assert len(salt) == 32 and (tmp_path / "redact.salt").read_bytes() == b"abc"
    assert "per-process" in caplog.text
    assert [p.name for p in tmp_path.iterdir()] == ["redact.salt"]  # no temporary left behind


def test_tool_results_cut_short_never_keep_part_of_a_key(tmp_path):
    from lsp_agent.agents.tools import Workspace, research_tools
    from tests.agents.test_orchestrator import make_workspace

    # The index cuts a definition's signature at 200 characters, grep hits are cut at 300:
    # in both the AWS key crosses the cut, and a cut piece ("AKIAIOSFODNN") matches no shape.
    sig = "LONG_SIGNATURE = '" + "w " * 88 + AWS + "'\n"
    hit = "NOTE = '" + "word " * 56 + AWS + " end'\n"
    assert sig.index(AWS) < 200 < sig.index(AWS) + len(AWS)
    index = make_workspace(tmp_path / "ws", {"a.py": sig, "b.py": hit})
    tools = {t.name: t.handler for t in research_tools(Workspace(index))}
    definition = tools["find_definitions"]({"name": "LONG_SIGNATURE"})
    grep = tools["grep"]({"pattern": "NOTE"})
    assert definition.startswith("a.py:1: constant LONG_SIGNATURE = 'w w")
    assert grep.startswith("b.py:1: NOTE = 'word word")
    for output in (definition, grep):
        assert "AKIA" not in output and "«" not in output  # cut before the key, not inside it


def test_redacting_again_keeps_placeholders_whole_even_with_a_short_literal_key():
    first = Redactor(salt=b"s" * 32).redact(f"k = '{OPENAI}'")
    digits = PLACEHOLDER.search(first).group(0)[len("«redacted:") :][:4]
    again = Redactor([digits], salt=b"s" * 32)
    assert again.redact(first + f" and {digits}") == first + " and " + redact.placeholder(
        digits, b"s" * 32
    )
