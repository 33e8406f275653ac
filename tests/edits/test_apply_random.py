"""Randomised checks of the applier against a plain splice, over many generated files."""

from __future__ import annotations

import random

import pytest

from lsp_agent.edits import EditBlock, apply_blocks

_WORDS = ["alpha()", "beta = 1", "return x", "if y:", "pass", "# note", "z += 2", ""]


def _count(lines: list[str], region: list[str]) -> int:
    m = len(region)
    return sum(1 for i in range(len(lines) - m + 1) if lines[i : i + m] == region)


@pytest.mark.parametrize("seed", range(4))
def test_unique_region_is_replaced_exactly_like_a_splice(seed: int) -> None:
    rng = random.Random(seed)
    applied = 0
    for _ in range(250):
        lines = [
            " " * rng.choice((0, 4, 8)) + rng.choice(_WORDS) for _ in range(rng.randint(1, 25))
        ]
        eol = rng.choice(("\n", "\r\n"))
        final = rng.random() < 0.7
        text = eol.join(lines) + (eol if final else "")
        start = rng.randrange(len(lines))
        end = rng.randint(start + 1, min(len(lines), start + 4))
        region = lines[start:end]
        new = [f"new_{k} = {rng.randint(0, 9)}" for k in range(rng.randint(0, 3))]
        if not any(line.strip() for line in region) or _count(lines, region) != 1:
            continue
        block = EditBlock(
            "f.py", "".join(f"{line}\n" for line in region), "".join(f"{n}\n" for n in new)
        )
        result = apply_blocks(text, [block])
        expected_lines = lines[:start] + new + lines[end:]
        if eol not in text:
            eol = "\n"  # a one-line file without a terminator says nothing: new lines get LF
        expected = eol.join(expected_lines) + (eol if final and expected_lines else "")
        assert result == expected, (text, block)
        applied += 1
    assert applied > 100


@pytest.mark.parametrize("seed", range(2))
def test_uniform_indentation_offset_is_recovered(seed: int) -> None:
    rng = random.Random(100 + seed)
    for _ in range(150):
        body = [rng.choice(_WORDS[:-1]) + f" {k}" for k in range(rng.randint(1, 5))]
        indents = [rng.choice((0, 4)) for _ in body]
        base = rng.choice((4, 8))
        lines = ["def unique_head():"] + [
            " " * (base + d) + b for d, b in zip(indents, body, strict=True)
        ]
        text = "\n".join(lines) + "\n"
        shift = rng.choice((-base, -4, 4, 8)) if base > 4 else rng.choice((-4, 4, 8))
        search = "".join(
            " " * (base + d + shift) + b + "\n" for d, b in zip(indents, body, strict=True)
        )
        replace = search + " " * (base + shift) + "added()\n"
        result = apply_blocks(text, [EditBlock("f.py", search, replace)])
        assert result == text + " " * base + "added()\n"
