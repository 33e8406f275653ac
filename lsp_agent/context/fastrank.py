"""PageRank's power iteration with numpy, when numpy is installed: the same numbers, bit for
bit, as the plain-Python loop in ranking.py, about ten times faster on a large graph.

numpy is a dependency, imported lazily: on a small graph, where its import (~40-100 ms, once
per process) would cost more than it saves, ranking.py iterates in plain Python, and it does so
too in an environment that lacks numpy. Identity holds because every floating-point operation
is the same one, in the same order: products elementwise; the per-name and per-file sums by
``bincount``, which adds its weights one by one in input order from 0.0, as ``sum()`` does;
and the two scalar sums (dangling mass, the L1 change) with Python's own ``sum`` on the
values. numpy's ``sum`` (pairwise) is never used. tests/context/test_ranking.py checks the identity.

When the C loops of ``_rank.c`` are built, the whole iteration runs there: a step's two sums
over the same runs in the same order (the edges are grouped by slot, the definitions by file),
split over two threads by run, and the two scalar sums as the interpreter's ``sum`` rounds them
(plain to 3.11, compensated from 3.12: probed once, else they stay in Python and only the step
is C). Stable sorts of ids are counting sorts. All give the same bits as the numpy calls.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Sequence
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lsp_agent.context.ranking import RefGraph, Walk

logger = logging.getLogger(__name__)

MIN_EDGES = 20_000  # below this the plain loop takes a few ms: not worth importing numpy

_numpy: Any = None
_missing = False
_kernel_module: Any = None  # context/_rank.c, or False when it was not built


def _np() -> Any:
    global _numpy, _missing
    if _numpy is None and not _missing:
        try:
            import numpy

            _numpy = numpy
        except ImportError:
            _missing = True
            logger.debug("numpy is not installed: PageRank iterates in plain Python")
    return _numpy


def _kernel() -> Any:
    """The C loops (_rank.c), or None: without a C compiler at install time numpy does the
    same work, to the same bits, more slowly."""
    global _kernel_module
    if _kernel_module is None:
        try:
            from lsp_agent.context import _rank  # type: ignore[attr-defined]

            _kernel_module = _rank
        except ImportError:
            _kernel_module = False
            logger.debug("lsp_agent.context._rank is not built: PageRank steps use bincount")
    return _kernel_module or None


# A step's sums split over this many threads in C (each run summed by one: the same floats).
THREADS = min(2, os.cpu_count() or 1)

_sum_kinds: dict[str, bool | None] = {}


def _sum_kind(np: Any, kernel: Any) -> bool | None:
    """Which of the C loop's scalar sums rounds as this interpreter's ``sum`` over a list of
    floats: plain (False, CPython to 3.11), compensated (True, 3.12 on), or None when neither
    does, and then each step's scalars are summed in Python. Probed once, on sums whose
    rounding tells the two apart."""
    if "kind" not in _sum_kinds:
        probes = [[1e16, 1.0, -1e16], [0.1] * 10, [1.0, 1e100, 1.0, -1e100], [3.0, -0.0], []]
        rng = random.Random(16)
        probes += [[rng.uniform(0.0, 1e-3) for _ in range(500)] for _ in range(4)]
        found = None
        for compensated in (False, True):
            if all(
                kernel.python_sum(np.array(probe, dtype=np.float64), compensated) == sum(probe)
                for probe in probes
            ):
                found = compensated
                break
        _sum_kinds["kind"] = found
        if found is None:
            logger.debug("sum() rounds unlike either C sum: PageRank's scalars stay in Python")
    return _sum_kinds["kind"]


def stable_argsort(np: Any, keys: Any, key_count: int) -> Any:
    """``np.argsort(keys, kind="stable")`` for ids in [0, key_count): the one stable
    permutation, by counting in C when it is built (a merge sort took ~0.2 s on 3 M ids)."""
    kernel = _kernel()
    if kernel is None:
        return np.argsort(keys, kind="stable")
    out = np.empty(len(keys), dtype=np.intp)
    kernel.stable_order(np.ascontiguousarray(keys, dtype=np.intp), key_count, out)
    return out


def edges(walk: Walk) -> int:
    return len(walk.single_srcs) + sum(map(len, walk.srcs))


class _RunOfItem:
    """An Arrays field naming, per item, the run it is in (``runs(np)[which]``'s bounds): the
    value set, else made from the bounds once and kept."""

    def __init__(self, which: int) -> None:
        self.which = which

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = f"_{name}"

    def __get__(self, arrays: Any, owner: type | None = None) -> Any:
        made = arrays.__dict__.get(self.key)
        if made is None:  # grouped by construction: each run's items in turn
            np = _np()
            bounds = arrays.__dict__["_runs"][self.which]
            made = np.repeat(np.arange(len(bounds) - 1, dtype=np.intp), np.diff(bounds))
            arrays.__dict__[self.key] = made
        return made

    def __set__(self, arrays: Any, value: Any) -> None:
        arrays.__dict__[self.key] = value


class Arrays:
    """A walk's transitions as numpy arrays, in the plain loop's order: made from a Walk, or
    straight from the graph (``graph_arrays``) without one."""

    n: int
    slots: int
    src: Any  # per edge, in slot order: the file the walk leaves (int32)
    coeff: Any  # its share
    inc: Any  # per (file, name it defines), files ascending: the name's slot (int32)
    self_share: Any  # per file: the share of its way out through names it defines itself
    dangling: Any  # files with no way out
    # ``slot`` (per edge: its slot, a name with edges: singles first, then the others; each by
    # name) and ``inc_file`` (per inc: its file) are derived from the runs when not set: the C
    # passes make only the runs, and these are read only where a step sums by bincount.
    slot = _RunOfItem(0)
    inc_file = _RunOfItem(1)

    def __init__(self, np: Any, walk: Walk) -> None:
        n = len(walk.self_share)
        slots = len(walk.single_srcs) + len(walk.srcs)
        self.n, self.slots = n, slots
        self.src = np.fromiter(
            chain(walk.single_srcs, chain.from_iterable(walk.srcs)), dtype=np.int32
        )
        self.coeff = np.fromiter(
            chain(walk.single_coeffs, chain.from_iterable(walk.coeffs)), dtype=np.float64
        )
        singles = len(walk.single_srcs)
        self.slot = np.fromiter(
            chain(
                range(singles),
                chain.from_iterable(map(repeat, range(singles, slots), map(len, walk.srcs))),
            ),
            dtype=np.intp,
        )
        self.inc = np.fromiter(chain.from_iterable(walk.incoming), dtype=np.int32)
        self.inc_file = np.fromiter(
            chain.from_iterable(map(repeat, range(n), map(len, walk.incoming))), dtype=np.intp
        )
        self.self_share = np.array(walk.self_share, dtype=np.float64)
        self.dangling = np.array(walk.dangling, dtype=np.intp)

    def runs(self, np: Any) -> tuple[Any, Any] | None:
        """(slot bounds over the edges, file bounds over ``inc``) as int64 arrays when both are
        grouped (slots and files ascending, as both constructions make them), else None:
        then each step's sums are bincounts."""
        cached = self.__dict__.get("_runs", False)
        if cached is not False:
            return cached  # type: ignore[no-any-return]
        runs = None
        if not (np.any(np.diff(self.slot) < 0) or np.any(np.diff(self.inc_file) < 0)):
            slot_bounds = np.zeros(self.slots + 1, dtype=np.int64)
            np.cumsum(np.bincount(self.slot, minlength=self.slots), out=slot_bounds[1:])
            inc_bounds = np.zeros(self.n + 1, dtype=np.int64)
            np.cumsum(np.bincount(self.inc_file, minlength=self.n), out=inc_bounds[1:])
            runs = slot_bounds, inc_bounds
        self.__dict__["_runs"] = runs
        return runs


def graph_arrays(graph: RefGraph, mentioned: frozenset[str] = frozenset()) -> Arrays | None:
    """``Arrays(np, Walk(graph, mentioned))`` computed from the graph with numpy (or the C
    passes of _rank.c), without the Walk's Python lists (on the kernel the Walk took ~5 s and
    ~0.4 GB). Every share is the
    same float: the products and quotients are elementwise IEEE operations, and each sum (a
    file's total weight, its self share) is a ``bincount`` over its edges in the Walk's order,
    which adds one by one from 0.0 as ``sum()`` does. None without numpy or below MIN_EDGES
    edges."""
    from lsp_agent.context.ranking import FlatRows, name_weights

    rows = graph.ref_ids
    if (len(rows.flat) if isinstance(rows, FlatRows) else sum(map(len, rows))) < MIN_EDGES:
        return None
    np = _np()
    if np is None:
        return None
    n = len(graph.paths)
    kernel = _kernel()
    if kernel is not None and hasattr(kernel, "walk_runs"):  # an older build has no passes
        made = _kernel_arrays(np, kernel, graph, mentioned)
        if made is not None:
            return made
    ref_lengths, name = joined_rows(np, graph.ref_ids)
    name = name.astype(np.intp)
    _, count = joined_rows(np, graph.ref_counts)
    source = np.repeat(np.arange(n, dtype=np.intp), ref_lengths)
    def_lengths, defined = joined_rows(np, graph.defines)
    defined = defined.astype(np.intp)
    definer = np.repeat(np.arange(n, dtype=np.intp), def_lengths)
    n_names = len(graph.names)
    definers = np.diff(np.asarray(graph.definer_start, dtype=np.int64))
    # Does the edge's file define the name itself? (file, name) keys, both sorted file-major.
    defined_keys = definer * n_names + defined
    edge_keys = source * n_names + name
    if len(defined_keys):
        at = np.minimum(np.searchsorted(defined_keys, edge_keys), len(defined_keys) - 1)
        own = defined_keys[at] == edge_keys
    else:
        own = np.zeros(len(name), dtype=bool)
    targets = definers[name] - own  # definers other than the file itself
    keep = targets > 0  # a name only this file defines is no way out
    name, count, source, own, targets = (
        name[keep], count[keep], source[keep], own[keep], targets[keep]
    )  # fmt: skip
    used = np.zeros(n_names, dtype=bool)
    used[name] = True
    ids = np.flatnonzero(used)
    weights = np.zeros(n_names, dtype=np.float64)
    weights[ids] = name_weights(
        list(map(graph.names.__getitem__, ids.tolist())), definers[ids].tolist(), mentioned
    )
    share = weights[name] * np.sqrt(count.astype(np.float64))
    total = np.bincount(source, weights=share * targets, minlength=n)
    share = share / total[source]
    self_share = np.bincount(source[own], weights=share[own], minlength=n)
    # Edges grouped by name (a stable sort keeps files ascending), single-edge names first.
    by_name = stable_argsort(np, name, n_names)
    sizes = np.bincount(name, minlength=n_names)
    single = sizes[name[by_name]] == 1
    by_slot = np.concatenate([by_name[single], by_name[~single]])
    single_names = np.flatnonzero(sizes == 1)
    multiple_names = np.flatnonzero(sizes > 1)
    slot_of = np.full(n_names, -1, dtype=np.intp)
    slot_of[single_names] = np.arange(len(single_names), dtype=np.intp)
    slot_of[multiple_names] = len(single_names) + np.arange(len(multiple_names), dtype=np.intp)
    incoming = slot_of[defined]
    has_slot = incoming >= 0
    out = Arrays.__new__(Arrays)
    out.n, out.slots = n, len(single_names) + len(multiple_names)
    out.src, out.coeff, out.slot = (
        source[by_slot].astype(np.int32), share[by_slot], slot_of[name[by_slot]]
    )  # fmt: skip
    out.inc, out.inc_file = incoming[has_slot].astype(np.int32), definer[has_slot]
    out.self_share = self_share
    leaving = np.zeros(n, dtype=bool)
    leaving[source] = True
    out.dangling = np.flatnonzero(~leaving)
    return out


def _kernel_arrays(
    np: Any,
    kernel: Any,
    graph: RefGraph,
    mentioned: frozenset[str],
) -> Arrays | None:
    """``graph_arrays`` in two C passes (_rank.c), the same arrays to the bit: numpy's way
    made ~25 passes over the kernel's 7.9 M edges and their temporaries (~1.2 s). None when a
    file's definitions are not ascending (then numpy's way, which assumes as much, is used)."""
    ref_lengths, name = joined_rows(np, graph.ref_ids)
    _, count = joined_rows(np, graph.ref_counts)
    def_lengths, defined = joined_rows(np, graph.defines)
    names = graph.names
    return walk_from_rows(
        np, kernel, row_bounds(np, ref_lengths), name, count, row_bounds(np, def_lengths),
        defined, np.asarray(graph.definer_start, dtype=np.int64),
        lambda ids, definers: kernel_name_weights(np, kernel, names, ids, definers, mentioned),
    )  # fmt: skip


def names_at(names: Sequence[str], ids: Any, picked: Any) -> list[str]:
    return [names[j] for j in ids[picked].tolist()]


def walk_from_rows(
    np: Any,
    kernel: Any,
    ref_bounds: Any,
    name: Any,
    count: Any,
    def_bounds: Any,
    defined: Any,
    definer_start: Any,
    weigh: Callable[[Any, Any], Any],
) -> Arrays | None:
    """The walk's arrays from per-file rows of name ids (references with their counts, and
    definitions, ascending per file) and each id's definers (``definer_start``): the C
    passes. ``weigh(used ids, their definer counts)`` gives the used names' weights. None
    when a file's definitions are not ascending."""
    n = len(ref_bounds) - 1
    n_names = len(definer_start) - 1
    targets = np.empty(len(name), dtype=np.int32)
    own = np.empty(len(name), dtype=np.uint8)
    used = np.empty(n_names, dtype=np.uint8)
    found = kernel.edge_targets(
        ref_bounds, name, def_bounds, defined, definer_start, targets, own, used
    )
    if found is None:
        return None
    kept, slots, incs = found
    ids = np.flatnonzero(used)
    weights = np.zeros(n_names, dtype=np.float64)
    weights[ids] = weigh(ids, definer_start[ids + 1] - definer_start[ids])
    # Each array alive while the walk's are made is memory first touched now (the kernel's
    # ranking peaked ~290 MB over its index): a caller that passes definer_start alone lets
    # it go here.
    del definer_start, used, ids
    out = Arrays.__new__(Arrays)
    out.n, out.slots = n, slots
    out.src = np.empty(kept, dtype=np.int32)
    out.coeff = np.empty(kept, dtype=np.float64)
    out.inc = np.empty(incs, dtype=np.int32)
    out.self_share = np.empty(n, dtype=np.float64)
    slot_bounds = np.empty(slots + 1, dtype=np.int64)
    inc_bounds = np.empty(n + 1, dtype=np.int64)
    dangling = np.empty(n, dtype=np.intp)
    dangling_count = kernel.walk_runs(
        ref_bounds, name, count, def_bounds, defined, targets, own, weights,
        out.src, out.coeff, slot_bounds, out.inc, inc_bounds, out.self_share, dangling,
    )  # fmt: skip
    out.dangling = dangling[:dangling_count].copy()
    out.__dict__["_runs"] = slot_bounds, inc_bounds  # grouped by construction (``runs``)
    return out


def kernel_name_weights(
    np: Any, kernel: Any, names: tuple[str, ...], ids: Any, definers: Any, mentioned: frozenset[str]
) -> Any:
    """``ranking.name_weights`` of ``names[ids]`` (with their definer counts) as a float64
    array: the string tests in C for ASCII names (~0.25 s in Python for the kernel's 420k),
    the others by name_weights itself; each weight is read from the same table."""
    tests = np.empty(len(ids), dtype=np.uint8)
    kernel.name_tests(names, np.ascontiguousarray(ids, dtype=np.int64), tests)
    return weights_of_tests(np, tests, definers, mentioned, lambda k: names_at(names, ids, k))


def weights_of_tests(
    np: Any,
    tests: Any,
    definers: Any,
    mentioned: frozenset[str],
    names_of: Callable[[Any], list[str]],
) -> Any:
    """The weights of names whose string tests are ``tests`` (name_tests's bits) and definer
    counts ``definers``; ``names_of(positions)`` gives the names at those positions, asked
    for the names the C tests left to Python (not ASCII) and, with ``mentioned``, all."""
    from lsp_agent.context.ranking import WEIGHT_TABLE, name_weights

    key = (tests & 1) * 8 + (tests & 2) * 2 + (np.asarray(definers) > 5) * 2
    if mentioned:
        every = names_of(np.arange(len(tests)))
        key += np.fromiter(map(mentioned.__contains__, every), dtype=bool, count=len(tests))
    weights = np.asarray(WEIGHT_TABLE, dtype=np.float64)[key]
    other = np.flatnonzero(tests & 128)
    if len(other):
        weights[other] = name_weights(
            names_of(other), np.asarray(definers)[other].tolist(), mentioned
        )
    return weights


def definer_starts(np: Any, ids: Any, count: int) -> Any:
    """Where each of ``count`` ids' run starts once ``ids`` (int32) are sorted: 0, then the
    running total of each id's occurrences (int64, ``count + 1`` long); in C when built (no
    int64 copy of the ids, no counts beside the result)."""
    starts = np.empty(count + 1, dtype=np.int64)
    kernel = _kernel()
    if hasattr(kernel, "count_starts"):
        kernel.count_starts(np.ascontiguousarray(ids, dtype=np.int32), starts)
        return starts
    starts[0] = 0
    np.cumsum(np.bincount(ids, minlength=count), out=starts[1:])
    return starts


def row_bounds(np: Any, lengths: Any) -> Any:
    bounds = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=bounds[1:])
    return bounds


def joined_rows(np: Any, rows: Sequence[Sequence[int]]) -> tuple[Any, Any]:
    """(length of each row, the rows end to end as int32) as numpy arrays: a compact graph's
    ``FlatRows`` are that already; int32 arrays (the index's name ids) have their bytes joined
    as they are; rows of other kinds (a graph built from strings) are read one by one."""
    from lsp_agent.context.ranking import FlatRows  # ranking imports this module

    if isinstance(rows, FlatRows):
        bounds = np.frombuffer(rows.bounds, dtype=np.int64)
        return np.diff(bounds).astype(np.intp), np.frombuffer(rows.flat, dtype=np.int32)
    lengths = np.fromiter(map(len, rows), dtype=np.intp, count=len(rows))
    kernel = _kernel()
    if isinstance(rows, list) and hasattr(kernel, "join_int32"):
        # into numpy's memory (huge pages), not a bytes object's: fewer first-touch faults
        flat = np.empty(int(lengths.sum()), dtype=np.int32)
        try:
            kernel.join_int32(rows, flat, np.empty(len(rows) + 1, dtype=np.int64))
        except TypeError:  # rows that are no int32 buffers (lists, wider arrays)
            flat = np.fromiter(chain.from_iterable(rows), dtype=np.int32, count=len(flat))
        return lengths, flat
    try:
        flat = np.frombuffer(b"".join(rows), dtype=np.int32)  # type: ignore[arg-type]
    except TypeError:
        flat = np.fromiter(chain.from_iterable(rows), dtype=np.int32)
    return lengths, flat


def power_iteration(
    walk: Walk | Arrays,
    teleport: Sequence[float],
    damping: float,
    max_iterations: int,
    tolerance: float,
) -> list[float] | None:
    """The ranks after power iteration, or None when numpy is missing or not worth it."""
    if isinstance(walk, Arrays):
        arrays, np = walk, _np()
    else:
        if edges(walk) < MIN_EDGES:
            return None
        np = _np()
        if np is None:
            return None
        arrays = walk.arrays
        if not isinstance(arrays, Arrays):
            arrays = walk.arrays = Arrays(np, walk)  # one conversion per walk
    bincount = np.bincount
    tele = np.array(teleport, dtype=np.float64)
    rank = tele.copy()
    kernel = _kernel()
    runs = arrays.runs(np) if kernel is not None else None
    compensated = _sum_kind(np, kernel) if runs is not None else None
    if runs is not None and compensated is not None:
        kernel.iterate(
            rank, np.ascontiguousarray(arrays.src, dtype=np.int32),
            np.ascontiguousarray(arrays.coeff), runs[0],
            np.ascontiguousarray(arrays.inc, dtype=np.int32), runs[1],
            np.ascontiguousarray(arrays.self_share),
            np.ascontiguousarray(arrays.dangling, dtype=np.intp), tele,
            damping, max_iterations, tolerance, compensated, THREADS,
        )  # fmt: skip
        return rank.tolist()  # type: ignore[no-any-return]
    if runs is not None:
        unit, incoming = np.empty(arrays.slots), np.empty(arrays.n)
        # int32 ids: the step reads every edge's source, half the bytes of intp
        src = np.ascontiguousarray(arrays.src, dtype=np.int32)
        inc = np.ascontiguousarray(arrays.inc, dtype=np.int32)
        coeff = np.ascontiguousarray(arrays.coeff)
    for _ in range(max_iterations):
        if runs is not None:
            kernel.push(rank, src, coeff, runs[0], inc, runs[1], unit, incoming)
        else:
            unit = bincount(
                arrays.slot, weights=rank[arrays.src] * arrays.coeff, minlength=arrays.slots
            )
            incoming = bincount(arrays.inc_file, weights=unit[arrays.inc], minlength=arrays.n)
        leak = damping * sum(rank[arrays.dangling].tolist()) + (1.0 - damping)
        new = damping * (incoming - rank * arrays.self_share) + leak * tele
        delta = sum(np.abs(new - rank).tolist())
        rank = new
        if delta < tolerance:
            break
    return rank.tolist()  # type: ignore[no-any-return]
