"""The focus neighbourhood: personalized PageRank by local push, over out-edges computed on
demand, so re-ranking toward a new focus, or after an edit, costs the neighbourhood and not the
graph. The shares come from ranking.out_row, like the stable ranking's."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Protocol

from lsp_agent.context.ranking import (
    DAMPING,
    RefGraph,
    name_weight,
    out_row,
    teleport_weights,
)

PUSH_EPSILON = 1e-3  # enough for the top neighbours; smaller mostly adds global hubs


OutRow = tuple[Sequence[int], Sequence[float], Sequence[int]]  # names, shares, targets


class OutRows(Protocol):
    """ranking.Walk or LazyRows: a file's out-edges."""

    graph: RefGraph
    mentioned: frozenset[str]

    def out(self, i: int) -> OutRow: ...


class LazyRows:
    """A walk's out-edges computed per file on first use. The focus neighbourhood's local push
    visits a few hundred files: after an edit changes the graph it need not wait for a whole
    Walk (~50 ms on the standard library), only the stable ranking does, at a prefix rebuild.
    After a patch (``ranking.patch_graph``: only some files' references changed) the rows of
    the other files are taken over from the previous rows, which are still exact for them."""

    def __init__(self, graph: RefGraph, mentioned: frozenset[str] = frozenset()) -> None:
        self.graph = graph
        self.mentioned = mentioned
        self._counts = graph.definer_counts()
        self._weights: dict[int, float] = {}
        self._rows: dict[int, OutRow] = {}
        self._base: OutRows | None = None  # a Walk on an earlier graph, exact except _stale
        self._stale: frozenset[int] = frozenset()

    @classmethod
    def after_patch(cls, previous: OutRows, graph: RefGraph, changed: frozenset[int]) -> LazyRows:
        """Rows for ``graph``, which differs from ``previous.graph`` only in the references of
        the ``changed`` files (same names, same definers, so the same weights)."""
        rows = cls.__new__(cls)
        rows.graph, rows.mentioned = graph, previous.mentioned
        if isinstance(previous, LazyRows):
            rows._counts, rows._weights = previous._counts, previous._weights
            rows._rows = {i: r for i, r in previous._rows.items() if i not in changed}
            rows._base, rows._stale = previous._base, previous._stale | changed
        else:
            rows._counts, rows._weights, rows._rows = graph.definer_counts(), {}, {}
            rows._base, rows._stale = previous, changed
        return rows

    def _weight(self, j: int) -> float:
        weight = self._weights.get(j)
        if weight is None:
            weight = name_weight(self.graph.names[j], self._counts[j], self.mentioned)
            self._weights[j] = weight
        return weight

    def out(self, i: int) -> OutRow:
        cached = self._rows.get(i)
        if cached is None:
            if self._base is not None and i not in self._stale:
                return self._base.out(i)
            g = self.graph
            row = out_row(
                g.ref_ids[i], g.ref_counts[i], g.defines[i], self._counts.__getitem__, self._weight
            )
            cached = self._rows[i] = ((), (), ()) if row is None else row[:3]
        return cached


def local_pagerank(
    walk: OutRows, personalization: Mapping[str, float], *, epsilon: float = PUSH_EPSILON
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
    teleport = teleport_weights(graph, personalization)
    seeds = [i for i, w in enumerate(teleport) if w > 0]
    residual: dict[int, float] = {i: teleport[i] for i in seeds}  # files i, names n + j
    estimate: dict[int, float] = {}
    queue = deque(seeds)
    queued = set(seeds)
    definer_files, definer_start = graph.definer_files, graph.definer_start

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
            files = definer_files[definer_start[u - n] : definer_start[u - n + 1]]
            for v in files:
                add(v, mass / len(files))
            continue
        estimate[u] = estimate.get(u, 0.0) + (1.0 - DAMPING) * mass
        spread = DAMPING * mass
        out_names, out_shares, out_targets = walk.out(u)
        if out_names:
            for j, share, targets in zip(out_names, out_shares, out_targets, strict=True):
                add(n + j, spread * share * targets)
        else:  # dangling: the walk restarts at the seeds
            for i in seeds:
                add(i, spread * teleport[i])
    return {graph.paths[i]: estimate[i] for i in sorted(estimate)}
