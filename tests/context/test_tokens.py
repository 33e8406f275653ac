"""count_tokens_upto: exact within the limit, a cheap lower bound past it, on real source text."""

from __future__ import annotations

import inspect
import random
import sys
import sysconfig
import typing
import unicodedata
from itertools import pairwise
from pathlib import Path

import pytest
import regex

from lsp_agent.context import tokens
from lsp_agent.context.render import RenderCache
from lsp_agent.context.tokens import count_tokens, count_tokens_upto
from lsp_agent.index.model import FileEntry

# Real code with odd corners: indentation, blank lines, strings, brackets left open at line ends.
SOURCE = inspect.getsource(typing)


def test_pieces_cut_before_a_non_blank_line_add_up_to_the_whole() -> None:
    cuts = [0, *(m.end() for m in tokens._CUT.finditer(SOURCE)), len(SOURCE)]
    pieces = [SOURCE[a:b] for a, b in pairwise(cuts) if b > a]
    assert len(pieces) > 100
    assert sum(map(count_tokens, pieces)) == count_tokens(SOURCE)


def test_upto_is_exact_within_the_limit_and_a_lower_bound_past_it() -> None:
    real = count_tokens(SOURCE)
    assert len(SOURCE) > 4 * tokens.PIECE_CHARS  # counted in pieces, not in one call
    assert count_tokens_upto(SOURCE, real) == real
    assert count_tokens_upto(SOURCE, real + 1000) == real
    small = 3000
    over = count_tokens_upto(SOURCE, small)
    assert small < over < real  # stopped early, still a true lower bound
    assert count_tokens_upto("x = 1\n", 0) == count_tokens("x = 1\n")  # short: just counted


def test_upto_counts_a_huge_text_in_parts_that_add_up(monkeypatch: pytest.MonkeyPatch) -> None:
    big = (SOURCE + "\n") * 3
    real = count_tokens(big)
    assert len(big) > tokens.C_PART_CHARS
    assert count_tokens_upto(big, real) == real
    over = count_tokens_upto(big, 3000)
    assert 3000 < over < count_tokens(SOURCE)  # stopped in the first part
    monkeypatch.setattr(tokens, "C_PART_CHARS", 10_000)  # many parts, each cut before a line
    assert count_tokens_upto(big, real) == real


def test_render_cache_keeps_a_lower_bound_apart_from_exact_counts() -> None:
    entry = FileEntry("typing.py", "python", len(SOURCE), 0, "sha", SOURCE.count("\n"))
    cache = RenderCache()
    bound = cache.tokens(entry, "full", lambda: SOURCE, limit=1000)
    assert bound is not None and bound > 1000
    assert cache.tokens(entry, "full", lambda: SOURCE, limit=bound - 1) == bound  # known over
    higher = cache.tokens(entry, "full", lambda: SOURCE, limit=bound + 500)  # counted further
    assert higher is not None and higher > bound + 500
    exact = cache.tokens(entry, "full", lambda: SOURCE)  # no limit: the real count
    assert exact is not None and exact > bound
    assert exact == count_tokens(cache.render(entry, "full", lambda: SOURCE) or "")
    assert cache.tokens(entry, "full", lambda: SOURCE, limit=10) == exact


# -- the counts of context/_pieces.c ---------------------------------------------------------

try:
    from lsp_agent.context import _pieces as pieces_module  # type: ignore[attr-defined]
except ImportError:  # installed without a C compiler
    pieces_module = None
needs_pieces = pytest.mark.skipif(pieces_module is None, reason="context/_pieces.c not built")
# Every kind of ASCII character the pattern tells apart: letters of the contractions, digits,
# each white space (and 0x1c, which Python calls space and the pattern does not), punctuation,
# control characters.
ALPHABET = "abZ9's'SllVEre \t\n\r\x0b\x0c\x1c\x00.(){};:#\\\"-_=+*&%$@!~`<>?/|,"
# And beyond ASCII: accented and other scripts' letters, the long s (a case of s), CJK numerals
# (letters with a numeric value), other scripts' digits, numbers that are not digits, Unicode's
# spaces and line separators, a combining mark, a zero-width space, a byte-order mark, an emoji.
UNICODE = (
    "\u00e9\u00c9\u017f\u0391\u03b1\u0416\u05d0\u0627\u0915\u093f\u4e00\u4e8c\u0663\u00b2"
    "\u2167\u00a0\u2003\u3000\u0085\u2028\u0301\u200b\ufeff\U0001f600"
)


def _tiktoken_count(text: str) -> int:
    return len(tokens._get_encoding().encode_ordinary(text))


def _tiktoken_pieces(text: str) -> list[str]:
    # The encoding's own pattern: its possessive \s++ takes a final newline itself, so the
    # regex module's $ (which also matches before one) finds the same pieces as tiktoken's.
    return regex.findall(tokens._get_encoding()._pat_str, text)


def _sources(*, ascii_only: bool) -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for path in sorted(stdlib.rglob("*.py"))[::11]:  # ~190 files across the library
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if text.isascii() or not ascii_only:
            texts.append(text)
    return texts


@needs_pieces
def test_counts_need_no_tiktoken_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    # CI installs with a C compiler: a failed build, or a vocabulary not found, must not pass
    # as tiktoken's slower count (whose encoder takes ~0.3 s to build at a first count).
    assert tokens._pieces() is pieces_module is not None
    assert tokens._vocabulary_loaded()
    texts = ["counted by pieces\n", 'name = "caf\u00e9"  # \u4e8c\u3000\U0001f600\n' + SOURCE]
    expected = list(map(_tiktoken_count, texts))

    def no_encoder() -> None:
        raise AssertionError("tiktoken's encoder was asked for")

    monkeypatch.setattr(tokens, "_get_encoding", no_encoder)
    assert list(map(count_tokens, texts)) == expected
    assert count_tokens_upto(texts[1], 100) > 100


@needs_pieces
def test_a_counted_text_keeps_no_utf8_copy() -> None:
    # The render cache holds its blocks for the server's life: counting one must not leave a
    # UTF-8 copy inside the str (what PyUnicode_AsUTF8 would do).
    text = "caf\u00e9 \u4e8c " * 2000
    size = sys.getsizeof(text)
    counted = count_tokens(text)
    assert sys.getsizeof(text) == size
    assert counted == _tiktoken_count(text)  # tiktoken's own encoder keeps such a copy
    assert sys.getsizeof(text) > size


@needs_pieces
def test_the_pieces_of_random_text_are_the_patterns_and_so_are_the_counts() -> None:
    rng = random.Random(16)
    for alphabet in (ALPHABET, ALPHABET + UNICODE):
        for _ in range(3000):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
            assert pieces_module.pieces(text) == _tiktoken_pieces(text), repr(text)
            assert count_tokens(text) == _tiktoken_count(text), repr(text)


@needs_pieces
def test_every_assigned_character_counts_as_tiktoken_counts_it() -> None:
    # Each character between letters, digits, spaces, punctuation and after an apostrophe,
    # 64 to a text (then one by one when a text differs, to name the character).
    chars = [
        chr(c)
        for c in range(0x80, 0x110000)
        if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) != "Cn"
    ]
    assert len(chars) > 250_000

    def probe(group: list[str]) -> str:
        return "".join(f"a{c}b 1{c}2 {c}{c}! '{c} .{c}\n" for c in group)

    differ = [
        f"U+{ord(c):04X}"
        for k in range(0, len(chars), 64)
        if count_tokens(probe(chars[k : k + 64])) != _tiktoken_count(probe(chars[k : k + 64]))
        for c in chars[k : k + 64]
        if count_tokens(probe([c])) != _tiktoken_count(probe([c]))
    ]
    assert differ == []


@needs_pieces
def test_counts_of_real_sources_are_tiktokens_every_way(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _sources(ascii_only=False)
    assert len(texts) > 150 and sum(not text.isascii() for text in texts) >= 5
    expected = list(map(_tiktoken_count, texts))
    assert [count_tokens(text) for text in texts] == expected  # merged in C
    assert [count_tokens(text) for text in texts] == expected  # short pieces from its table
    ascii_texts = [text for text in texts if text.isascii()]
    assert pieces_module.pieces(ascii_texts[0]) == _tiktoken_pieces(ascii_texts[0])
    monkeypatch.setattr(tokens, "_vocabulary", False)  # no vocabulary: tiktoken per piece
    tokens._memo.clear()
    assert [count_tokens(text) for text in texts[:40]] == expected[:40]
    assert len(tokens._memo) > 1000
    monkeypatch.setattr(tokens, "_pieces_module", False)  # installed without a C compiler
    assert [count_tokens(text) for text in texts[:20]] == expected[:20]
    assert count_tokens_upto(SOURCE, 3000) > 3000


@needs_pieces
def test_a_vocabulary_that_is_not_cl100k_is_not_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    expected = _tiktoken_count(SOURCE)
    monkeypatch.setattr(tokens, "VOCABULARY_SHA256", "0" * 64)
    monkeypatch.setattr(tokens, "_vocabulary", None)
    with caplog.at_level("WARNING"):
        assert count_tokens(SOURCE) == expected  # tiktoken per piece instead
    assert tokens._vocabulary is False
    assert "is not cl100k's vocabulary" in caplog.text


@needs_pieces
def test_the_count_stops_past_its_limit_and_the_memo_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = count_tokens(SOURCE)
    assert pieces_module.count_bpe(SOURCE, -1) == real
    over = pieces_module.count_bpe(SOURCE, 500)
    assert 500 < over < 520  # one piece past the limit: no piece is 20 tokens
    assert pieces_module.count_bpe(SOURCE, real) == real
    encode = tokens._get_encoding().encode_ordinary
    memo: dict[str, int] = {}
    assert pieces_module.count(SOURCE, memo, encode, -1) == real
    assert 500 < pieces_module.count(SOURCE, memo, encode, 500) < 520
    monkeypatch.setattr(tokens, "_vocabulary", False)
    monkeypatch.setattr(tokens, "MEMO_PIECES", 10)
    count_tokens(SOURCE)
    count_tokens("x = 1\n")  # the memo was over its bound: it starts again
    assert len(tokens._memo) <= 10 + len(pieces_module.pieces("x = 1\n"))


@needs_pieces
def test_bad_input_gets_a_clear_error_and_loses_nothing() -> None:
    with pytest.raises(TypeError):
        pieces_module.pieces(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pieces_module.count("x", [], len, -1)  # type: ignore[arg-type]
    with pytest.raises(ZeroDivisionError):  # the encoder's own error comes through
        pieces_module.count("x y", {}, lambda piece: 1 // 0, -1)
    real = count_tokens(SOURCE)
    for data, line in ((b"aGk= 1\nnot base64 2\n", 2), (b"aGk= 1\naGk= 2\n", 2), (b"aGk=\n", 1)):
        with pytest.raises(ValueError, match=f"vocabulary line {line}: "):
            pieces_module.load_ranks(data)
    assert count_tokens(SOURCE) == real  # the vocabulary loaded before stays
    # A lone surrogate has no UTF-8: tiktoken's own rule counts such a text.
    text = "x = '\ud800'\n"
    with pytest.raises(UnicodeEncodeError):
        pieces_module.count_bpe(text, -1)
    assert count_tokens(text) == _tiktoken_count(text)
