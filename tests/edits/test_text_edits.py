"""LSP text edits: UTF-16 positions and the round trip apply(old, text_edits(old, new)) == new."""

from __future__ import annotations

import random

import pytest

from lsp_agent.edits import TextEdit, apply_text_edits, text_edits, utf16_len
from lsp_agent.edits.text import Encoding


def roundtrip(old: str, new: str) -> list[TextEdit]:
    edits = text_edits(old, new)
    assert apply_text_edits(old, edits) == new
    for encoding in ("utf-8", "utf-32"):
        assert (
            apply_text_edits(old, text_edits(old, new, encoding=encoding), encoding=encoding) == new
        )
    return edits


def test_single_character_change_is_minimal() -> None:
    edits = roundtrip("a = 1\nb = 2\n", "a = 1\nb = 3\n")
    assert edits == [TextEdit(1, 4, 1, 5, "3")]


def test_identical_texts_give_no_edits() -> None:
    assert text_edits("same\n", "same\n") == []


def test_positions_count_astral_characters_as_two_units() -> None:
    old = "s = '😀x'\n"
    new = "s = '😀y'\n"
    edits = roundtrip(old, new)
    # 's', ' ', '=', ' ', "'" = 5 units, the emoji 2 more: 'x' sits at UTF-16 column 7.
    assert edits == [TextEdit(0, 7, 0, 8, "y")]
    assert utf16_len("😀") == 2


def test_crlf_text_round_trips_and_never_splits_a_crlf() -> None:
    old = "one\r\ntwo\r\nthree\r\n"
    new = "one\r\ntwo\r\n2.5\r\nthree\r\n"
    edits = roundtrip(old, new)
    for edit in edits:
        assert edit.start_character <= len("three")


def test_no_final_newline_round_trips() -> None:
    roundtrip("a\nb", "a\nb\nc")
    roundtrip("a\nb\n", "a\nb")
    roundtrip("", "x")
    roundtrip("x", "")


def test_edits_are_sorted_and_do_not_overlap() -> None:
    old = "".join(f"line {i}\n" for i in range(30))
    new = old.replace("line 3\n", "LINE 3\n").replace("line 20\n", "").replace("line 29\n", "x\n")
    edits = roundtrip(old, new)
    ends = [(e.end_line, e.end_character) for e in edits]
    starts = [(e.start_line, e.start_character) for e in edits]
    assert len(edits) == 3
    assert all(ends[i] <= starts[i + 1] for i in range(len(edits) - 1))


def test_apply_rejects_overlapping_edits() -> None:
    with pytest.raises(ValueError, match="overlapping"):
        apply_text_edits("abcdef\n", [TextEdit(0, 0, 0, 3, "x"), TextEdit(0, 2, 0, 4, "y")])


def test_apply_rejects_a_position_inside_a_surrogate_pair() -> None:
    with pytest.raises(ValueError, match="splits a character"):
        apply_text_edits("😀\n", [TextEdit(0, 1, 0, 1, "x")])


@pytest.mark.parametrize(("encoding", "column"), [("utf-16", 7), ("utf-8", 9), ("utf-32", 6)])
def test_other_negotiated_position_encodings(encoding: Encoding, column: int) -> None:
    old, new = "s = '😀x'\n", "s = '😀y'\n"
    edits = text_edits(old, new, encoding=encoding)
    assert edits == [TextEdit(0, column, 0, column + 1, "y")]
    assert apply_text_edits(old, edits, encoding=encoding) == new


def test_unknown_encoding_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown position encoding"):
        text_edits("a", "b", encoding="latin-1")  # type: ignore[arg-type]


def test_apply_clamps_a_character_past_the_line_end() -> None:
    assert apply_text_edits("ab\ncd\n", [TextEdit(0, 99, 0, 99, "!")]) == "ab!\ncd\n"


_ALPHABET = ["a", "b", " ", "\t", "\n", "\r\n", "\r", "é", "😀", "𝕏", "\u2028", "\x0c", "\ud800"]


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_over_random_texts(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        old = "".join(rng.choices(_ALPHABET, k=rng.randint(0, 40)))
        chars = list(old)
        for _ in range(rng.randint(0, 6)):
            pos = rng.randint(0, len(chars))
            if chars and rng.random() < 0.5:
                del chars[min(pos, len(chars) - 1)]
            else:
                chars.insert(pos, rng.choice(_ALPHABET))
        new = "".join(chars)
        roundtrip(old, new)


def test_map_lines_moves_a_range_with_edits_elsewhere_and_refuses_edits_inside() -> None:
    from lsp_agent.edits import map_lines

    old = "a\nb\nc\nd\ne\n"
    assert map_lines(old, "x\ny\n" + old, 2, 3) == (4, 5)  # lines inserted above
    assert map_lines(old, old.replace("a\nb\n", ""), 2, 3) == (0, 1)  # lines deleted above
    assert map_lines(old, old + "f\n", 2, 3) == (2, 3)  # below: unchanged
    assert map_lines(old, "a\nb\nnew\nc\nd\ne\n", 2, 3) == (3, 4)  # inserted right before it
    assert map_lines(old, old.replace("c", "C"), 2, 3) is None  # edited inside
    assert map_lines(old, "a\nb\nc\nnew\nd\ne\n", 2, 3) is None  # inserted between its lines


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_lines_appended_at_the_end_are_inserted_inside_the_last_line(eol: str) -> None:
    # Not at the line past the final newline: Neovim 0.10+ inserts there with
    # nvim_buf_set_lines and leaves an extra empty line (tests/editors: the goal run's edit).
    old = f"def f():{eol}    return 1{eol}"
    new = old + f"X = 1{eol}Y = 2{eol}"
    (edit,) = text_edits(old, new)
    assert (edit.start_line, edit.start_character) == (1, 12)
    assert (edit.end_line, edit.end_character) == (1, 12)
    assert edit.new_text == f"{eol}X = 1{eol}Y = 2"
    assert apply_text_edits(old, [edit]) == new
    (cut,) = text_edits(new, old)  # and the last lines deleted: from the end of the line before
    assert (cut.start_line, cut.start_character, cut.end_line) == (1, 12, 3)
    assert apply_text_edits(new, [cut]) == old


def test_edits_round_trip_on_random_texts_with_mixed_line_endings() -> None:
    rng = random.Random(7)
    pieces = ["a\n", "b\n", "\n", "cc\r\n", "x", "\r\n", "y\n", "\r"]
    for _ in range(5000):
        old = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        new = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        if rng.random() < 0.5:
            new = old + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 3)))
        assert apply_text_edits(old, text_edits(old, new)) == new, (old, new)
