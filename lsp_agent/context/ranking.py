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
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate, chain, compress, pairwise, product, repeat
from typing import overload

from lsp_agent.context import fastrank
from lsp_agent.index.model import FileEntry
from lsp_agent.index.symtab import summary_of

DAMPING = 0.85
MAX_ITERATIONS = 100
TOLERANCE = 1e-5  # L1 change between iterations; ranks only order files (top 500 as at 1e-6)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class FileSummary:
    """The part of a file that shapes the graph; equal summaries mean an unchanged graph."""

    defines: tuple[str, ...]  # sorted, unique
    referenced: tuple[str, ...]  # sorted, unique
    counts: tuple[int, ...]  # references to each name of ``referenced``


def summarize(entry: FileEntry) -> FileSummary:
    # The index keeps exactly this summary per file (index/symtab.py: sorted unique defined
    # names, sorted referenced names, their counts), so no record is decoded here.
    defines, referenced, counts = summary_of(entry)
    return FileSummary(defines, referenced, counts)


@dataclass(frozen=True, eq=False)
class RefGraph:
    """Files and names by integer id (both sorted, so ids ascend with the strings).

    Rows are flat lists of ints built with C-level ``map``/``compress``/``sorted`` rather than
    per-item loops, and there is no list per name: the standard library has ~47k defined names
    and ~80k (file, name) reference pairs, a cold snapshot pays for each of them, and every
    container that survives adds to the garbage collector's next full pass over the index."""

    paths: tuple[str, ...]  # sorted
    names: tuple[str, ...]  # sorted; only names that some file defines
    definer_files: Sequence[int]  # files defining each name, by name, files ascending
    definer_start: Sequence[int]  # name j's definers: definer_files[start[j]:start[j + 1]]
    defines: Sequence[Sequence[int]]  # per file: the names it defines, ascending
    ref_ids: Sequence[Sequence[int]]  # per file: referenced names defined somewhere, ascending
    ref_counts: Sequence[Sequence[int]]  # per file: reference count of each of ``ref_ids``

    def index_of(self, path: str) -> int | None:
        i = bisect_left(self.paths, path)
        return i if i < len(self.paths) and self.paths[i] == path else None

    def name_id(self, name: str) -> int | None:
        j = bisect_left(self.names, name)
        return j if j < len(self.names) and self.names[j] == name else None

    def definers(self, j: int) -> Sequence[int]:
        return self.definer_files[self.definer_start[j] : self.definer_start[j + 1]]

    def definer_counts(self) -> list[int]:
        start = self.definer_start
        return list(map(operator.sub, start[1:], start))  # type: ignore[index]


def build_graph(summaries: Mapping[str, FileSummary]) -> RefGraph:
    paths = tuple(sorted(summaries))
    rows = [summaries[path] for path in paths]
    names = tuple(sorted(set(chain.from_iterable(row.defines for row in rows))))
    ids = dict(zip(names, range(len(names)), strict=True))
    defines = [list(map(ids.__getitem__, row.defines)) for row in rows]
    # (name, file) pairs in file order; a stable sort by name keeps each name's files ascending.
    pair_names = list(chain.from_iterable(defines))
    pair_files = list(chain.from_iterable(map(repeat, range(len(rows)), map(len, defines))))
    by_name = sorted(range(len(pair_names)), key=pair_names.__getitem__)
    definer_files = list(map(pair_files.__getitem__, by_name))
    sizes = Counter(pair_names)
    definer_start = [0, *accumulate(map(sizes.__getitem__, range(len(names))))]
    ref_ids: list[Sequence[int]] = []
    ref_counts: list[Sequence[int]] = []
    for row in rows:
        found, counts = _ref_row(ids.get, row)
        ref_ids.append(found)
        ref_counts.append(counts)
    return RefGraph(paths, names, definer_files, definer_start, defines, ref_ids, ref_counts)


def patch_graph(graph: RefGraph, changed: Mapping[str, FileSummary]) -> RefGraph | None:
    """The graph after files changed what they reference but not what they define (typing in a
    function body): the same graph ``build_graph`` would make, for the cost of those files'
    rows. None when it cannot be patched (a file is new, or defines other names)."""
    ref_ids: dict[int, Sequence[int]] = {}
    ref_counts: dict[int, Sequence[int]] = {}
    for path in sorted(changed):
        i = graph.index_of(path)
        row = changed[path]
        if i is None or list(map(graph.name_id, row.defines)) != list(graph.defines[i]):
            return None
        ref_ids[i], ref_counts[i] = _ref_row(graph.name_id, row)
    return replace(
        graph,
        ref_ids=FlatRows.of(graph.ref_ids).replaced(ref_ids),
        ref_counts=FlatRows.of(graph.ref_counts).replaced(ref_counts),
    )


def row_matches(graph: RefGraph, i: int, summary: FileSummary) -> bool:
    """Whether file i's row in ``graph`` is the one ``summary`` makes (then a change to the
    file left the graph as it is: a comment, a body that calls the same names)."""
    if list(map(graph.name_id, summary.defines)) != list(graph.defines[i]):
        return False
    ids, counts = _ref_row(graph.name_id, summary)
    return list(ids) == list(graph.ref_ids[i]) and list(counts) == list(graph.ref_counts[i])


def compact_graph(graph: RefGraph) -> RefGraph:
    """The same graph with its rows as int32 arrays: a tenth of the memory of lists of ints
    (ids above 256 are objects of their own), and the form ``persist`` reads back. Values and
    their order are unchanged, so every rank computed on it is too."""
    return replace(
        graph,
        definer_files=array("i", graph.definer_files),
        definer_start=array("q", graph.definer_start),
        defines=FlatRows.of(graph.defines),
        ref_ids=FlatRows.of(graph.ref_ids),
        ref_counts=FlatRows.of(graph.ref_counts),
    )


class FlatRows(Sequence["array[int]"]):
    """Int32 rows end to end with their bounds: row k is ``flat[bounds[k]:bounds[k + 1]]``,
    sliced when read. A compact graph's rows: the kernel's three sets of 78k rows took ~1 s to
    make as arrays of their own (and more memory), and every reader that wants them all
    (fastrank, persist) takes ``flat`` as it is. Read-only: ``replaced`` makes a new one."""

    __slots__ = ("bounds", "flat")

    def __init__(self, flat: array[int], bounds: array[int]) -> None:
        if not bounds or bounds[0] != 0 or bounds[-1] != len(flat):
            raise ValueError("rows and their bounds do not match")
        self.flat, self.bounds = flat, bounds

    @classmethod
    def of(cls, rows: Sequence[Sequence[int]]) -> FlatRows:
        if isinstance(rows, FlatRows):
            return rows
        return cls(
            array("i", chain.from_iterable(rows)), array("q", [0, *accumulate(map(len, rows))])
        )

    def __len__(self) -> int:
        return len(self.bounds) - 1

    @overload
    def __getitem__(self, k: int) -> array[int]: ...
    @overload
    def __getitem__(self, k: slice) -> list[array[int]]: ...
    def __getitem__(self, k: int | slice) -> array[int] | list[array[int]]:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        n = len(self)
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError("row index out of range")
        return self.flat[self.bounds[k] : self.bounds[k + 1]]

    def __iter__(self) -> Iterator[array[int]]:
        flat = self.flat
        return (flat[a:b] for a, b in pairwise(self.bounds))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FlatRows):
            return self.bounds == other.bounds and self.flat == other.flat
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal by value, like a list

    def replaced(self, rows: Mapping[int, Sequence[int]]) -> FlatRows:
        """These rows with row k replaced by ``rows[k]``: one copy of the flat array (an edit's
        patch, ~10 MB on the kernel) rather than a list of 78k rows."""
        flat, bounds = array("i", self.flat), self.bounds
        changed = sorted(rows, reverse=True)  # from the end: earlier bounds stay valid
        shifts: list[tuple[int, int]] = []
        for k in changed:
            a, b = bounds[k], bounds[k + 1]
            row = array("i", rows[k])
            flat[a:b] = row
            if len(row) != b - a:
                shifts.append((k + 1, len(row) - (b - a)))
        if shifts:
            bounds = _shifted(bounds, shifts)
        return FlatRows(flat, bounds)


def _shifted(bounds: array[int], shifts: list[tuple[int, int]]) -> array[int]:
    """``bounds`` with ``delta`` added to every bound from ``start`` on, per (start, delta)."""
    out = array("q", bounds)
    np = fastrank._np()
    if np is not None:
        view = np.frombuffer(out, dtype=np.int64)
        for start, delta in shifts:
            view[start:] += delta
        return out
    for start, delta in shifts:
        for k in range(start, len(out)):
            out[k] += delta
    return out


def split_rows(flat: array[int], bounds: Sequence[int]) -> list[array[int]]:
    """Row k of ``flat`` is ``flat[bounds[k]:bounds[k + 1]]``."""
    return [flat[a:b] for a, b in pairwise(bounds)]


def _ref_row(
    lookup: Callable[[str], int | None], row: FileSummary
) -> tuple[Sequence[int], Sequence[int]]:
    """(name ids, counts) of the referenced names that some file defines, ids ascending."""
    found = list(map(lookup, row.referenced))
    if None not in found:
        return found, row.counts  # type: ignore[return-value]  # no None in found
    keep = list(map(operator.is_not, found, repeat(None)))  # names defined nowhere
    return list(compress(found, keep)), list(compress(row.counts, keep))


def name_weight(name: str, definer_count: int, mentioned: frozenset[str]) -> float:
    is_snake = "_" in name.strip("_")
    is_camel = not (name.islower() or name.isupper())  # has both cases
    return _WEIGHTS[
        (is_snake or is_camel) and len(name) >= 8,
        name.startswith("_"),
        definer_count > 5,
        name in mentioned,
    ]


def name_weights(
    names: Sequence[str], definer_counts: Sequence[int], mentioned: frozenset[str]
) -> list[float]:
    """``name_weight`` of each name with its definer count: the same floats from the same
    table, each test made for all names at once by C-level maps (the kernel's stable ranking
    weighs ~250k names; one call each took ~0.5 s)."""
    strong = map(
        operator.and_,
        map(
            operator.or_,
            map(operator.contains, map(str.strip, names, repeat("_")), repeat("_")),
            map(operator.not_, map(operator.or_, map(str.islower, names), map(str.isupper, names))),
        ),
        map(operator.ge, map(len, names), repeat(8)),
    )
    private = map(str.startswith, names, repeat("_"))
    common = map(operator.gt, definer_counts, repeat(5))
    cited = map(mentioned.__contains__, names)
    return list(map(_WEIGHTS.__getitem__, zip(strong, private, common, cited, strict=True)))


def _weight(strong: bool, private: bool, common: bool, cited: bool) -> float:
    """Aider's factors, multiplied in this order: long snake/camel names x10, private names
    x0.1, names defined in many files x0.1, names the instruction mentions x10."""
    weight = 1.0
    if strong:
        weight *= 10
    if private:
        weight *= 0.1
    if common:
        weight *= 0.1
    if cited:
        weight *= 10
    return weight


# Every weight there is, by its four tests: computed once, so a name's weight is the same
# float however it is looked up.
_WEIGHTS = {key: _weight(*key) for key in product((False, True), repeat=4)}
# The same weights by 8 * strong + 4 * private + 2 * common + cited (fastrank's C path).
WEIGHT_TABLE = tuple(_WEIGHTS.values())


def mentioned_identifiers(text: str) -> frozenset[str]:
    """Identifiers in an instruction, plus the parts of dotted and path-like words."""
    return frozenset(_IDENTIFIER.findall(text))


Row = tuple[Sequence[int], list[float], Sequence[int], list[bool] | None]


def out_row(
    js: Sequence[int],
    counts: Sequence[int],
    own_ids: Sequence[int],
    count_of: Callable[[int], int],
    weight_of: Callable[[int], float],
) -> Row | None:
    """One file's way out: (names, share per target, targets, defined-here flags or None), or
    None when the file references no name defined elsewhere. The one place shares are
    computed, so a whole Walk and the lazy rows of the local push agree bit for bit."""
    if not js:
        return None
    targets = list(map(count_of, js))  # definers other than the file itself
    own = list(map(set(own_ids).__contains__, js)) if own_ids else None
    if own is not None:
        targets = list(map(operator.sub, targets, own))
        if 0 in targets:  # names only this file defines: the walk cannot leave through them
            js, counts = list(compress(js, targets)), list(compress(counts, targets))
            own = list(compress(own, targets))
            targets = list(compress(targets, targets))
            if not js:
                return None
    ws = list(map(operator.mul, map(weight_of, js), map(math.sqrt, counts)))
    total = sum(map(operator.mul, ws, targets))
    return js, list(map(operator.truediv, ws, repeat(total))), targets, own


class Walk:
    """The random walk's transitions for one graph and one set of mentioned names.

    For file i, ``out_names[i]``, ``out_shares[i]`` and ``out_targets[i]`` say: the walk leaves
    i through that name with probability ``share`` per definer other than i, of which there are
    ``targets``. Built once and reused by every ranking on the graph. The floating-point
    operations (products, the sequential sums of ``sum``) are the same, in the same order, as
    a per-item loop would do, so the shares do not depend on how they are computed.
    """

    def __init__(self, graph: RefGraph, mentioned: frozenset[str] = frozenset()) -> None:
        self.graph = graph
        self.mentioned = mentioned
        n = len(graph.paths)
        names = graph.names
        definer_count = graph.definer_counts()
        weights = [0.0] * len(names)
        for j in sorted(set(chain.from_iterable(graph.ref_ids))):
            weights[j] = name_weight(names[j], definer_count[j], mentioned)
        empty: list[int] = []
        self.out_names: list[list[int]] = [empty] * n  # shared empty rows: never mutated
        self.out_shares: list[list[float]] = [empty] * n  # type: ignore[list-item]
        self.out_targets: list[list[int]] = [empty] * n
        self.self_share = [0.0] * n
        flat_names: list[int] = []
        flat_files: list[int] = []
        flat_shares: list[float] = []
        count_of, weight_of = definer_count.__getitem__, weights.__getitem__
        for i, (js, counts, own_ids) in enumerate(
            zip(graph.ref_ids, graph.ref_counts, graph.defines, strict=True)
        ):
            row = out_row(js, counts, own_ids, count_of, weight_of)
            if row is None:
                continue
            js, shares, targets, own = row
            self.out_names[i], self.out_shares[i], self.out_targets[i] = js, shares, targets
            if own is not None:
                self.self_share[i] = sum(compress(shares, own), 0.0)
            flat_names += js
            flat_files += repeat(i, len(js))
            flat_shares += shares
        # Group the edges by name; the sort is stable, so each name keeps its files ascending.
        by_name = sorted(range(len(flat_names)), key=flat_names.__getitem__)
        sorted_names = list(map(flat_names.__getitem__, by_name))
        files = list(map(flat_files.__getitem__, by_name))
        shares_by_name = list(map(flat_shares.__getitem__, by_name))
        sizes = Counter(sorted_names)
        active = sorted(sizes)
        bounds = [0, *accumulate(map(sizes.__getitem__, active))]
        # Slots: names referenced from one file first (their mass is one product, computed in
        # a single ``map`` by pagerank), then the others (one list of sources each); each group
        # by name id.
        single = [sizes[j] == 1 for j in active]
        multiple = [not one for one in single]
        starts = bounds[:-1]
        self.single_srcs = list(map(files.__getitem__, compress(starts, single)))
        self.single_coeffs = list(map(shares_by_name.__getitem__, compress(starts, single)))
        spans = list(compress(pairwise(bounds), multiple))
        self.srcs = [files[a:b] for a, b in spans]
        self.coeffs = [shares_by_name[a:b] for a, b in spans]
        slot = [-1] * len(names)
        for k, j in enumerate(chain(compress(active, single), compress(active, multiple))):
            slot[j] = k
        self.incoming = [[k for k in map(slot.__getitem__, own) if k >= 0] for own in graph.defines]
        self.dangling = [i for i in range(n) if not self.out_names[i]]
        self.arrays: object | None = None  # fastrank's numpy copy, made on first use

    def out(self, i: int) -> tuple[Sequence[int], Sequence[float], Sequence[int]]:
        return self.out_names[i], self.out_shares[i], self.out_targets[i]


def pagerank(
    graph: RefGraph,
    *,
    personalization: Mapping[str, float] | None = None,
    mentioned: frozenset[str] = frozenset(),
    walk: Walk | None = None,
    accelerate: bool = True,
) -> dict[str, float]:
    """Scores summing to 1, keyed by path, by power iteration. ``personalization`` (path ->
    weight) is the teleport distribution; unknown paths are ignored; empty or None is uniform.
    Pass a prebuilt ``walk`` (for the same mentioned names) to skip its construction. With
    ``accelerate``, a large graph iterates with numpy when it is installed (fastrank.py): the
    same scores, bit for bit."""
    n = len(graph.paths)
    if n == 0:
        return {}
    teleport = teleport_weights(graph, personalization)
    if accelerate:
        # Without a walk given, a large graph's transitions are made with numpy directly.
        made = walk or fastrank.graph_arrays(graph, mentioned)
        if made is not None:
            fast = fastrank.power_iteration(made, teleport, DAMPING, MAX_ITERATIONS, TOLERANCE)
            if fast is not None:
                return dict(zip(graph.paths, fast, strict=True))
    walk = walk or Walk(graph, mentioned)
    single_srcs, single_coeffs, srcs, coeffs = (
        walk.single_srcs, walk.single_coeffs, walk.srcs, walk.coeffs
    )  # fmt: skip
    incoming, self_share, dangling = walk.incoming, walk.self_share, walk.dangling
    rank = list(teleport)
    mul = operator.mul
    for _ in range(MAX_ITERATIONS):
        get = rank.__getitem__
        # Mass per name (slot order): sum() of one product is that product, bit for bit.
        unit = list(map(mul, map(get, single_srcs), single_coeffs))
        unit += [sum(map(mul, map(get, s), c)) for s, c in zip(srcs, coeffs, strict=True)]
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


def teleport_weights(graph: RefGraph, personalization: Mapping[str, float] | None) -> list[float]:
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
    # A reverse sort is still stable: equal scores keep the path order, with no key tuples.
    # Every path scored (the prefix's case): the dict's own lookup, no Python frame per path.
    scored = all(map(scores.__contains__, keys))
    return sorted(
        keys, key=scores.__getitem__ if scored else lambda p: scores.get(p, 0.0), reverse=True
    )
