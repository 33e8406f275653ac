"""Rank files by a reference graph, with personalized PageRank written out in plain Python.

A file that references a name links to every file that defines that name; edge weights follow
aider's repo map (long snake/camel names x10, private names x0.1, names defined in many files
x0.1, names mentioned in the instruction x10, times the square root of the reference count).
Self-links are excluded: using your own definitions says nothing about importance.

The file->file graph is never materialised: a common name with many definers and many users
would make it quadratic. Each PageRank step instead pushes mass from referencing files into
per-name accumulators, then from names to their definers, which computes exactly the same
transition. Every loop runs over tuples sorted by path or name, so the floating-point sums, and
with them the ranks, are identical in any process and under any hash seed.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lsp_agent.index.model import FileEntry

DAMPING = 0.85
MAX_ITERATIONS = 60
TOLERANCE = 1e-9
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class FileSummary:
    """The part of a file that shapes the graph; equal summaries mean an unchanged graph."""

    defines: tuple[str, ...]  # sorted, unique
    references: tuple[tuple[str, int], ...]  # (name, count) sorted by name


def summarize(entry: FileEntry) -> FileSummary:
    defines = sorted({d.name for d in entry.definitions})
    counts: dict[str, int] = {}
    for ref in entry.references:
        counts[ref.name] = counts.get(ref.name, 0) + 1
    return FileSummary(tuple(defines), tuple(sorted(counts.items())))


@dataclass(frozen=True)
class RefGraph:
    paths: tuple[str, ...]  # sorted
    names: tuple[str, ...]  # sorted; only names that some file defines
    definers: tuple[tuple[int, ...], ...]  # per name: indices of the files defining it
    # per file: (name index, reference count) for referenced names that are defined somewhere
    refs: tuple[tuple[tuple[int, int], ...], ...]

    def index_of(self, path: str) -> int | None:
        lo, hi = 0, len(self.paths)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.paths[mid] < path:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < len(self.paths) and self.paths[lo] == path else None


def build_graph(summaries: Mapping[str, FileSummary]) -> RefGraph:
    paths = tuple(sorted(summaries))
    defined: dict[str, list[int]] = {}
    for i, path in enumerate(paths):
        for name in summaries[path].defines:
            defined.setdefault(name, []).append(i)
    names = tuple(sorted(defined))
    name_index = {name: j for j, name in enumerate(names)}
    definers = tuple(tuple(defined[name]) for name in names)
    refs = tuple(
        tuple(
            (name_index[name], count)
            for name, count in summaries[path].references
            if name in name_index
        )
        for path in paths
    )
    return RefGraph(paths, names, definers, refs)


def name_weight(name: str, definer_count: int, mentioned: frozenset[str]) -> float:
    weight = 1.0
    is_snake = "_" in name.strip("_") and any(c.isalpha() for c in name)
    is_camel = any(c.isupper() for c in name) and any(c.islower() for c in name)
    if (is_snake or is_camel) and len(name) >= 8:
        weight *= 10
    if name.startswith("_"):
        weight *= 0.1
    if definer_count > 5:
        weight *= 0.1
    if name in mentioned:
        weight *= 10
    return weight


def mentioned_identifiers(text: str) -> frozenset[str]:
    """Identifiers in an instruction, plus the parts of dotted and path-like words."""
    return frozenset(_IDENTIFIER.findall(text))


def pagerank(
    graph: RefGraph,
    *,
    personalization: Mapping[str, float] | None = None,
    mentioned: frozenset[str] = frozenset(),
) -> dict[str, float]:
    """Scores summing to 1, keyed by path. ``personalization`` (path -> weight) is the teleport
    distribution; unknown paths are ignored; empty or None means uniform."""
    n = len(graph.paths)
    if n == 0:
        return {}
    teleport = _teleport(graph, personalization)
    # Per-file outgoing weights, normalised: coeff[i] = [(name, share)], self_share[i] = the
    # share that would flow back to i through names it defines itself (subtracted below).
    name_mul = [
        name_weight(name, len(graph.definers[j]), mentioned) for j, name in enumerate(graph.names)
    ]
    defines_of: list[list[int]] = [[] for _ in range(n)]
    for j, files in enumerate(graph.definers):
        for i in files:
            defines_of[i].append(j)
    own = [frozenset(d) for d in defines_of]
    by_name_src: list[list[int]] = [[] for _ in graph.names]
    by_name_coeff: list[list[float]] = [[] for _ in graph.names]
    self_share = [0.0] * n
    has_out = [False] * n
    for i in range(n):
        weighted: list[tuple[int, float, bool]] = []
        total = 0.0
        for j, count in graph.refs[i]:
            is_self = j in own[i]
            targets = len(graph.definers[j]) - (1 if is_self else 0)
            if targets <= 0:
                continue
            w = name_mul[j] * math.sqrt(count)
            weighted.append((j, w, is_self))
            total += w * targets
        if total <= 0.0:
            continue
        has_out[i] = True
        for j, w, is_self in weighted:
            by_name_src[j].append(i)
            by_name_coeff[j].append(w / total)
            if is_self:
                self_share[i] += w / total
    active = [j for j in range(len(graph.names)) if by_name_src[j]]
    srcs = [by_name_src[j] for j in active]
    coeffs = [by_name_coeff[j] for j in active]
    slot = {j: k for k, j in enumerate(active)}
    incoming = [[slot[j] for j in defines_of[i] if j in slot] for i in range(n)]
    dangling = [i for i in range(n) if not has_out[i]]

    rank = list(teleport)
    mul = operator.mul
    for _ in range(MAX_ITERATIONS):
        get = rank.__getitem__
        unit = [sum(map(mul, map(get, s), c)) for s, c in zip(srcs, coeffs, strict=True)]
        uget = unit.__getitem__
        leak = DAMPING * sum(map(get, dangling)) + (1.0 - DAMPING)
        new = [
            DAMPING * (sum(map(uget, incoming[i])) - rank[i] * self_share[i]) + leak * teleport[i]
            for i in range(n)
        ]
        delta = sum(abs(a - b) for a, b in zip(new, rank, strict=True))
        rank = new
        if delta < TOLERANCE:
            break
    return dict(zip(graph.paths, rank, strict=True))


def _teleport(graph: RefGraph, personalization: Mapping[str, float] | None) -> list[float]:
    n = len(graph.paths)
    weights = [0.0] * n
    for path in sorted(personalization or {}):
        i = graph.index_of(path)
        value = (personalization or {})[path]
        if i is not None and value > 0:
            weights[i] += value
    total = sum(weights)
    if total <= 0:
        return [1.0 / n] * n
    return [w / total for w in weights]


def order(scores: Mapping[str, float], paths: Iterable[str] | None = None) -> list[str]:
    """Paths by descending score; ties broken by path."""
    keys = sorted(scores) if paths is None else sorted(paths)
    return sorted(keys, key=lambda p: (-scores.get(p, 0.0), p))
