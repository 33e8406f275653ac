"""The C extractor against the Python loop on real trees: same tuples, and each one's time.

    python bench/bench_extract.py ROOT [ROOT ...]

Every file under the roots that a grammar applies to is extracted twice, by
``native.extractor(language).extract(data)`` and by ``extract_raw`` given a py-tree-sitter tree
(the Python loop). Prints the files and bytes per language, how many files differ (the first few
differences in full) and the CPU seconds of each (parse included in both).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

from lsp_agent.index import languages, native
from lsp_agent.index.symbols import extract_raw


def show_difference(path: str, made: tuple, expected: tuple) -> None:
    print(f"differs: {path}")
    for kind, left, right in zip(("definitions", "references"), made, expected, strict=False):
        for one, other in zip(left, right, strict=False):
            if one != other:
                print(f"  {kind}: C {one!r}\n  {kind}: Python {other!r}")
                break
        if len(left) != len(right):
            print(f"  {kind}: C {len(left)}, Python {len(right)}")
    if made[2] != expected[2]:
        print(f"  syntax errors: C {made[2]}, Python {expected[2]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", type=Path)
    args = parser.parse_args()
    if not native.available():
        print("the C extractor is not built (or the installed tree-sitter is not the vendored one)")
        return 1
    files: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    differ = 0
    python_seconds = native_seconds = 0.0
    for root in args.roots:
        for folder, _dirs, names in os.walk(root):
            for name in sorted(names):
                path = os.path.join(folder, name)
                language = languages.language_for_path(name)
                if language is None or not os.path.isfile(path):
                    continue
                data = Path(path).read_bytes()
                started = time.process_time()
                expected = extract_raw(language, data, languages.new_parser(language).parse(data))
                python_seconds += time.process_time() - started
                started = time.process_time()
                made = native.extractor(language).extract(data)  # type: ignore[union-attr]
                native_seconds += time.process_time() - started
                files[language] += 1
                sizes[language] += len(data)
                if made != expected:
                    differ += 1
                    if differ <= 3:
                        show_difference(path, made, expected)
    for language in sorted(files):
        print(f"{language:>10}: {files[language]:7,} files, {sizes[language] / 1e6:8.1f} MB")
    print(f"files differing: {differ} of {sum(files.values()):,}")
    print(f"CPU seconds: Python loop {python_seconds:.2f}, C {native_seconds:.2f}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
