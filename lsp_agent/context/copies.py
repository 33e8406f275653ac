"""Files whose content the repo map already shows under another path: exact and near copies.

A large tree vendors its own files: the kernel's tools/include/uapi/linux/bpf.h is
include/uapi/linux/bpf.h with 18 lines changed, 76k tokens each. The map shows such a file
once, at the better-ranked path; the other is one line naming it.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from itertools import compress
from operator import attrgetter, ne

from lsp_agent.index.model import FileEntry

NEAR_SHARE = 0.9  # a near copy shares at least this share of its lines with the original
NEAR_MIN_BYTES = 1024  # smaller files cost little to show twice; their likeness says less
NEAR_SIZE_RATIO = 0.8  # sizes within this ratio, or the line shares cannot reach NEAR_SHARE
NEAR_CANDIDATES = 4  # shown files of the same name compared, best-ranked first


def copies_of(ranked: list[str], listed: Sequence[FileEntry]) -> dict[str, str]:
    """copy -> the best-ranked file with byte-identical content (empty files excepted: they
    cost nothing and say "empty"), of the files ``ranked`` and their entries ``listed``. A copy
    is shown by path only: its text is already there."""
    sizes = list(map(attrgetter("size"), listed))
    paths = list(compress(ranked, sizes))
    shas = list(compress(map(attrgetter("sha256"), listed), sizes))
    # Each content's best-ranked path: of pairs given in reverse, a dict keeps the last.
    first = dict(zip(reversed(shas), reversed(paths), strict=True))
    if len(first) == len(paths):
        return {}  # no content twice
    owners = list(map(first.__getitem__, shas))
    return dict(compress(zip(paths, owners, strict=True), map(ne, paths, owners)))


class NearCopies:
    """Finds, among files already shown, one that a file nearly repeats: same file name,
    similar size, at least NEAR_SHARE of its lines in common (as a multiset). Only files about
    to be shown are compared, each with a few shown files of its name, so a tree of 78k files
    costs a few hundred comparisons, not a pass over every pair."""

    def __init__(self, entries: Mapping[str, FileEntry], text_of: Callable[[str], str]) -> None:
        self._entries = entries
        self._text_of = text_of
        self._shown: dict[str, list[str]] = {}  # file name -> shown paths, best-ranked first
        self._lines: dict[str, Counter[str]] = {}
        self.found: dict[str, tuple[str, int]] = {}  # copy -> (original, lines that differ)

    def shown(self, path: str) -> None:
        self._shown.setdefault(posixpath.basename(path), []).append(path)

    def check(self, path: str) -> tuple[str, int] | None:
        """(original, lines that differ) when ``path`` nearly copies a shown file."""
        entry = self._entries[path]
        if entry.size < NEAR_MIN_BYTES:
            return None
        for other in self._shown.get(posixpath.basename(path), [])[:NEAR_CANDIDATES]:
            size = self._entries[other].size
            if min(size, entry.size) < NEAR_SIZE_RATIO * max(size, entry.size):
                continue
            mine, theirs = self._counts(path), self._counts(other)
            common = sum((mine & theirs).values())
            longest = max(sum(mine.values()), sum(theirs.values()))
            if longest and common >= NEAR_SHARE * longest:
                differ = longest - common
                self.found[path] = (other, differ)
                return other, differ
        return None

    def _counts(self, path: str) -> Counter[str]:
        counts = self._lines.get(path)
        if counts is None:
            counts = self._lines[path] = Counter(self._text_of(path).splitlines())
        return counts
