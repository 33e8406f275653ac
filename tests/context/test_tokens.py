"""count_tokens_upto: exact within the limit, a cheap lower bound past it, on real source text."""

from __future__ import annotations

import inspect
import random
import sysconfig
import typing
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


# -- the pieces of an ASCII text (context/_pieces.c) ------------------------------------------

try:
    from lsp_agent.context import _pieces as pieces_module  # type: ignore[attr-defined]
except ImportError:  # installed without a C compiler
    pieces_module = None
needs_pieces = pytest.mark.skipif(pieces_module is None, reason="context/_pieces.c not built")
# Every kind of ASCII character the pattern tells apart: letters of the contractions, digits,
# each white space (and 0x1c, which Python calls space and the pattern does not), punctuation,
# control characters.
ALPHABET = "abZ9's'SllVEre \t\n\r\x0b\x0c\x1c\x00.(){};:#\\\"-_=+*&%$@!~`<>?/|,"


def test_the_pieces_module_is_built_and_used() -> None:
    # CI installs with a C compiler: a failed build must not pass as tiktoken's slower count.
    assert tokens._pieces() is pieces_module is not None
    tokens._memo.clear()
    text = "counted by pieces\n"
    assert count_tokens(text) == len(tokens._get_encoding().encode_ordinary(text))
    assert set(tokens._memo) == {"counted", " by", " pieces", "\n"}


def _tiktoken_pieces(text: str) -> list[str]:
    # The encoding's own pattern: its possessive \s++ takes a final newline itself, so the
    # regex module's $ (which also matches before one) finds the same pieces as tiktoken's.
    return regex.findall(tokens._get_encoding()._pat_str, text)


def _ascii_sources() -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for path in sorted(stdlib.rglob("*.py"))[::11]:  # ~190 files across the library
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if text.isascii():
            texts.append(text)
    return texts


@needs_pieces
def test_the_pieces_of_random_ascii_are_the_patterns_and_so_are_the_counts() -> None:
    encode = tokens._get_encoding().encode_ordinary
    rng = random.Random(16)
    for _ in range(3000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 40)))
        assert pieces_module.pieces(text) == _tiktoken_pieces(text), repr(text)
        assert count_tokens(text) == len(encode(text)), repr(text)


@needs_pieces
def test_counts_of_real_sources_are_tiktokens_with_and_without_the_memo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = _ascii_sources()
    assert len(texts) > 150
    encode = tokens._get_encoding().encode_ordinary
    expected = [len(encode(text)) for text in texts]
    tokens._memo.clear()
    assert [count_tokens(text) for text in texts] == expected  # the memo filled as it goes
    assert len(tokens._memo) > 1000
    assert [count_tokens(text) for text in texts] == expected  # read from the memo
    assert pieces_module.pieces(texts[0]) == _tiktoken_pieces(texts[0])
    monkeypatch.setattr(tokens, "_pieces_module", False)  # installed without a C compiler
    assert [count_tokens(text) for text in texts[:20]] == expected[:20]
    assert count_tokens_upto(SOURCE, 3000) > 3000


@needs_pieces
def test_a_text_with_any_other_character_is_left_to_tiktoken() -> None:
    text = 'name = "caf\u00e9"\n' + SOURCE
    assert pieces_module.pieces(text) is None
    assert pieces_module.count(text, {}, len, -1) is None
    assert count_tokens(text) == len(tokens._get_encoding().encode_ordinary(text))
    assert count_tokens_upto(text, 100) > 100


@needs_pieces
def test_the_count_stops_past_its_limit_and_the_memo_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encode = tokens._get_encoding().encode_ordinary
    memo: dict[str, int] = {}
    real = pieces_module.count(SOURCE, memo, encode, -1)
    assert real == len(encode(SOURCE))
    over = pieces_module.count(SOURCE, memo, encode, 500)
    assert 500 < over < 520  # one piece past the limit, from the memo: no piece is 20 tokens
    assert pieces_module.count(SOURCE, memo, encode, real) == real
    monkeypatch.setattr(tokens, "MEMO_PIECES", 10)
    count_tokens(SOURCE)
    count_tokens("x = 1\n")  # the memo was over its bound: it starts again
    assert len(tokens._memo) <= 10 + len(pieces_module.pieces("x = 1\n"))


@needs_pieces
def test_bad_arguments_get_a_clear_error() -> None:
    with pytest.raises(TypeError):
        pieces_module.pieces(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pieces_module.count("x", [], len, -1)  # type: ignore[arg-type]
    with pytest.raises(ZeroDivisionError):  # the encoder's own error comes through
        pieces_module.count("x y", {}, lambda piece: 1 // 0, -1)


@needs_pieces
def test_the_counts_cached_in_c_follow_their_memo() -> None:
    # The C cache in front of the memo answers only for the memo it was filled from, and
    # only while that memo still holds what it was given.
    real = tokens._get_encoding().encode_ordinary
    memo: dict[str, int] = {}
    counted = pieces_module.count(SOURCE, memo, real, -1)
    assert counted == len(real(SOURCE))
    assert pieces_module.count(SOURCE, memo, lambda piece: 1 // 0, -1) == counted  # cached

    def fives(piece: str) -> list[int]:
        return [0] * 5

    pieces_of_source = len(pieces_module.pieces(SOURCE))
    assert pieces_module.count(SOURCE, {}, fives, -1) == 5 * pieces_of_source  # another memo
    memo.clear()  # the same memo, emptied: nothing of it is trusted
    assert pieces_module.count(SOURCE, memo, fives, -1) == 5 * pieces_of_source
    assert set(memo) == set(pieces_module.pieces(SOURCE))
    memo.clear()
    assert pieces_module.count(SOURCE, memo, real, -1) == counted
