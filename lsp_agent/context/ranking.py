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
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lsp_agent.index.model import FileEntry

DAMPING = 0.85
MAX_ITERATIONS = 100
TOLERANCE = 1e-5  # L1 change between iterations; ranks only order files (top 500 as at 1e-6)
PUSH_EPSILON = 1e-3  # enough for the top neighbours; smaller mostly adds global hubs
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class FileSummary:
    """The part of a file that shapes the graph; equal summaries mean an unchanged graph."""

    defines: tuple[str, ...]  # sorted, unique
    references: tuple[tuple[str, int], ...]  # (name, count) sorted by name


def summarize(entry: FileEntry) -> FileSummary:
    name = operator.attrgetter("name")
    defines = sorted(set(map(name, entry.definitions)))
    counts = Counter(map(name, entry.references))
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
    is_snake = "_" in name.strip("_")
    is_camel = not (name.islower() or name.isupper())  # has both cases
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


class Walk:
    """The random walk's transitions for one graph and one set of mentioned names.

    ``out[i]`` lists (name, share) for file i: the walk leaves i through that name with that
    probability per definer other than i. Built once and reused by every ranking on the graph.
    """

    def __init__(self, graph: RefGraph, mentioned: frozenset[str] = frozenset()) -> None:
        self.graph = graph
        n = len(graph.paths)
        names = graph.names
        definer_count = [len(files) for files in graph.definers]
        weights: dict[int, float] = {}
        defines_of: list[list[int]] = [[] for _ in range(n)]
        for j, files in enumerate(graph.definers):
            for i in files:
                defines_of[i].append(j)
        # out[i]: (name, share, targets) - share per definer, targets = definers other than i
        self.out: list[list[tuple[int, float, int]]] = [[] for _ in range(n)]
        self.self_share = [0.0] * n
        by_name: dict[int, tuple[list[int], list[float]]] = {}
        sqrt = math.sqrt
        for i, refs in enumerate(graph.refs):
            if not refs:
                continue
            own = set(defines_of[i])
            weighted: list[tuple[int, float, int]] = []
            total = 0.0
            for j, count in refs:
                targets = definer_count[j] - (j in own)
                if targets <= 0:
                    continue
                weight = weights.get(j)
                if weight is None:
                    weight = weights[j] = name_weight(names[j], definer_count[j], mentioned)
                w = weight * sqrt(count)
                weighted.append((j, w, targets))
                total += w * targets
            out = self.out[i]
            for j, w, targets in weighted:
                share = w / total
                out.append((j, share, targets))
                entry = by_name.get(j)
                if entry is None:
                    entry = by_name[j] = ([], [])
                entry[0].append(i)
                entry[1].append(share)
                if targets < definer_count[j]:  # i defines j itself
                    self.self_share[i] += share
        active = sorted(by_name)
        slot = {j: k for k, j in enumerate(active)}
        self.srcs = [by_name[j][0] for j in active]
        self.coeffs = [by_name[j][1] for j in active]
        self.incoming = [[slot[j] for j in defines_of[i] if j in slot] for i in range(n)]
        self.dangling = [i for i in range(n) if not self.out[i]]


def pagerank(
    graph: RefGraph,
    *,
    personalization: Mapping[str, float] | None = None,
    mentioned: frozenset[str] = frozenset(),
    walk: Walk | None = None,
) -> dict[str, float]:
    """Scores summing to 1, keyed by path, by power iteration. ``personalization`` (path ->
    weight) is the teleport distribution; unknown paths are ignored; empty or None is uniform.
    Pass a prebuilt ``walk`` (for the same mentioned names) to skip its construction."""
    n = len(graph.paths)
    if n == 0:
        return {}
    walk = walk or Walk(graph, mentioned)
    teleport = _teleport(graph, personalization)
    srcs, coeffs, incoming, self_share = walk.srcs, walk.coeffs, walk.incoming, walk.self_share
    dangling = walk.dangling
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
        delta = sum(map(abs, map(operator.sub, new, rank)))
        rank = new
        if delta < TOLERANCE:
            break
    return dict(zip(graph.paths, rank, strict=True))


def local_pagerank(
    walk: Walk, personalization: Mapping[str, float], *, epsilon: float = PUSH_EPSILON
) -> dict[str, float]:
    """Approximate personalized PageRank by local push (Andersen, Chung, Lang 2006): work
    proportional to the neighbourhood of the seeds, not to the graph, so re-ranking toward a
    new focus stays cheap. Names are pass-through nodes: a file pushes mass into the names it
    references, a name hands its accumulated mass to its definers in one go (so a name defined
    in hundreds of files is expanded rarely). Unlike ``pagerank``, mass may flow back to the
    referencing file through a name it also defines; only the neighbourhood's order matters.
    Residuals are pushed in FIFO order from seeds sorted by path: deterministic. Returns only
    files that received some mass."""
    graph = walk.graph
    n = len(graph.paths)
    teleport = _teleport(graph, personalization)
    seeds = [i for i, w in enumerate(teleport) if w > 0]
    residual: dict[int, float] = {i: teleport[i] for i in seeds}  # files i, names n + j
    estimate: dict[int, float] = {}
    queue = deque(seeds)
    queued = set(seeds)
    definers = graph.definers

    def add(node: int, mass: float) -> None:
        value = residual.get(node, 0.0) + mass
        residual[node] = value
        if value > epsilon and node not in queued:
            queue.append(node)
            queued.add(node)

    while queue:
        u = queue.popleft()
        queued.discard(u)
        mass = residual.pop(u, 0.0)
        if u >= n:  # a name: split among its definers
            files = definers[u - n]
            for v in files:
                add(v, mass / len(files))
            continue
        estimate[u] = estimate.get(u, 0.0) + (1.0 - DAMPING) * mass
        spread = DAMPING * mass
        if walk.out[u]:
            for j, share, targets in walk.out[u]:
                add(n + j, spread * share * targets)
        else:  # dangling: the walk restarts at the seeds
            for i in seeds:
                add(i, spread * teleport[i])
    return {graph.paths[i]: estimate[i] for i in sorted(estimate)}


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
