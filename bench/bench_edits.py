"""Applier throughput on real code: the standard library.

For up to 200 stdlib files, one SEARCH/REPLACE block renames a random function on its ``def``
line (SEARCH = that line and the next, to make it usually unique), applied three ways: exact, with
SEARCH and REPLACE dedented (the indentation-offset path) and with a typo in SEARCH (the
not-found path, which builds the closest-lines hint). Then text edits and a unified diff of each
result. Prints figures; asserts nothing about time.

    .venv/bin/python bench/bench_edits.py [--files N] [--seed S]
"""

from __future__ import annotations

import argparse
import random
import re
import sysconfig
import textwrap
import time
from pathlib import Path

from lsp_agent.edits import ApplyError, EditBlock, apply_blocks, text_edits, unified_diff
from lsp_agent.edits.text import split_newline_lines

_DEF = re.compile(r"^[ \t]*(?:async )?def \w+", re.MULTILINE)


def stdlib_files(limit: int, rng: random.Random) -> list[tuple[str, str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)
    rng.shuffle(paths)
    out = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if def_lines(text):
            out.append((str(path.relative_to(root)), text))
        if len(out) == limit:
            break
    return out


def def_lines(text: str) -> list[int]:
    lines = split_newline_lines(text)
    return [i for i, line in enumerate(lines) if _DEF.match(line) and i + 1 < len(lines)]


def make_block(path: str, text: str, rng: random.Random, mode: str) -> EditBlock:
    lines = split_newline_lines(text)
    i = rng.choice(def_lines(text))
    search = lines[i] + lines[i + 1]
    replace = re.sub(r"def (\w+)", r"def \1_renamed", lines[i], count=1) + lines[i + 1]
    if mode == "dedented":
        search, replace = textwrap.dedent(search), textwrap.dedent(replace)
    elif mode == "typo":
        search = search.replace("def ", "deff ", 1)
    return EditBlock(path, search, replace)


def run(files: list[tuple[str, str]], rng: random.Random, mode: str) -> list[str]:
    outcomes = {"applied": 0, "ambiguous": 0, "not found": 0, "other error": 0}
    results = []
    nbytes = sum(len(text.encode()) for _, text in files)
    blocks = [make_block(path, text, rng, mode) for path, text in files]
    started = time.perf_counter()
    for (_, text), block in zip(files, blocks, strict=True):
        try:
            results.append(apply_blocks(text, [block]))
            outcomes["applied"] += 1
        except ApplyError as exc:
            key = "ambiguous" if "places" in exc.message else "not found"
            outcomes[key if "SEARCH" in exc.message else "other error"] += 1
            results.append(text)
    elapsed = time.perf_counter() - started
    print(
        f"{mode:>9}: {len(files)} blocks in {elapsed * 1000:7.1f} ms "
        f"({len(files) / elapsed:7.0f} blocks/s, {nbytes / elapsed / 1e6:5.1f} MB/s)  "
        + ", ".join(f"{k} {v}" for k, v in outcomes.items())
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    files = stdlib_files(args.files, rng)
    total = sum(len(text.encode()) for _, text in files)
    lines = sum(text.count("\n") for _, text in files)
    print(f"{len(files)} stdlib files, {total / 1e6:.2f} MB, {lines} lines")
    results = run(files, rng, "exact")
    run(files, rng, "dedented")
    run(files, rng, "typo")
    started = time.perf_counter()
    count = sum(len(text_edits(old, new)) for (_, old), new in zip(files, results, strict=True))
    mid = time.perf_counter()
    size = sum(len(unified_diff(p, old, new)) for (p, old), new in zip(files, results, strict=True))
    end = time.perf_counter()
    print(f"text_edits: {count} edits in {(mid - started) * 1000:.1f} ms")
    print(f"unified_diff: {size} bytes in {(end - mid) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
