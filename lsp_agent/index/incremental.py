"""Incremental re-parsing of open buffers.

An editor sends a whole new text on every keystroke batch; re-parsing a 2,000-line file from
scratch costs ~8 ms, re-parsing it incrementally ~1 ms. We keep the last tree per open buffer,
find the changed byte range (common prefix and suffix), tell the old tree about the edit and let
tree-sitter reuse everything outside it.
"""

from __future__ import annotations

from tree_sitter import Point, Tree

from lsp_agent.index.languages import new_parser


def _common_prefix(a: bytes, b: bytes) -> int:
    # Binary search over slice equality: each comparison is a memcmp, far faster than a
    # byte-by-byte Python loop on large texts.
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid :] == b[len(b) - mid :]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _point(data: bytes, offset: int) -> Point:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return Point(data.count(b"\n", 0, offset), offset - line_start)


def changed_range(old: bytes, new: bytes) -> tuple[int, int, int]:
    """(start, old_end, new_end) byte offsets of the single region that differs."""
    start = _common_prefix(old, new)
    suffix = _common_suffix(old, new, min(len(old), len(new)) - start)
    return start, len(old) - suffix, len(new) - suffix


class BufferTrees:
    """The last parse tree of each open buffer. Callers serialize access (the index lock)."""

    def __init__(self) -> None:
        self._trees: dict[str, tuple[str, bytes, Tree]] = {}  # path -> (language, source, tree)

    def parse(self, path: str, language: str, source: bytes) -> Tree:
        parser = new_parser(language)
        previous = self._trees.get(path)
        if previous is None or previous[0] != language:
            tree = parser.parse(source)
        else:
            _, old, old_tree = previous
            start, old_end, new_end = changed_range(old, source)
            old_tree.edit(
                start_byte=start,
                old_end_byte=old_end,
                new_end_byte=new_end,
                start_point=_point(old, start),
                old_end_point=_point(old, old_end),
                new_end_point=_point(source, new_end),
            )
            tree = parser.parse(source, old_tree)
        self._trees[path] = (language, source, tree)
        return tree

    def discard(self, path: str) -> None:
        self._trees.pop(path, None)
