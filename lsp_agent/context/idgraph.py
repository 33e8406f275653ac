"""The reference graph made from the index's name ids, with numpy.

The index already holds every file's names as int32 ids into one ``NameTable`` (index/symtab.py),
each array in the order of the names' strings. ``ranking.build_graph`` starts again from
strings: a summary per file (78k tuples of strings on the kernel, ~2 s to make), a set and a
dict over every name, then lists of ints, which ``compact_graph`` turns into arrays (~1 s more).
Here the arrays are joined as they are and mapped to graph ids in bulk: the table knows each
id's place in string order (``NameTable.order``), so no string is compared, and the rows are
kept joined (``FlatRows``). The result is the graph ``compact_graph(build_graph(...))`` makes,
field for field (tests/context/test_idgraph.py): graph ids ascend with the strings, rows keep
the string order, and a stable sort keeps each name's definers ascending. Everything here is
integer work, so no rank can differ.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from itertools import compress, islice, repeat
from operator import attrgetter, is_, lt
from typing import Any

from lsp_agent.context import fastrank
from lsp_agent.context.fastrank import joined_rows
from lsp_agent.context.ranking import (
    DAMPING,
    MAX_ITERATIONS,
    TOLERANCE,
    FlatRows,
    RefGraph,
    build_graph,
    compact_graph,
    summarize,
)
from lsp_agent.index.model import FileEntry
from lsp_agent.index.symtab import NAME_ENCODING, FileSymbols

# Below this many files the graph takes milliseconds from strings, less than numpy's import.
MIN_FILES = 500


def reference_graph(entries: Mapping[str, FileEntry]) -> RefGraph:
    """The compact reference graph of ``entries``: from the index's ids when it can be, else
    from the files' summaries. The same graph either way."""
    graph = graph_from_ids(entries) if len(entries) >= MIN_FILES else None
    if graph is None:
        graph = compact_graph(build_graph({path: summarize(e) for path, e in entries.items()}))
    return graph


def graph_from_ids(entries: Mapping[str, FileEntry]) -> RefGraph | None:
    """The compact graph of ``entries``, or None when it cannot be made from ids: an entry
    that keeps no ids into the table the others use (made by hand, or parsed into a task's own
    table), no entries, or numpy missing. The caller then builds it from summaries."""
    np = fastrank._np()
    made = _symbols(entries) if np is not None else None
    if made is None:
        return None
    paths, symbols = made
    table = symbols[0].table
    n = len(paths)
    def_lengths, flat_defined = joined_rows(np, [s.defined for s in symbols])
    ref_lengths, flat_referenced = joined_rows(np, [s.referenced for s in symbols])
    _, flat_counts = joined_rows(np, [s.counts for s in symbols])

    # The table keeps its names in string order with each id's place there: graph ids are the
    # places of the defined names, counted in that order (no string is compared here).
    by_string, positions = table.order()
    place = np.frombuffer(positions, dtype=np.int32)
    is_defined = np.zeros(len(by_string), dtype=bool)  # by place, not np.unique (it hashes)
    is_defined[place[flat_defined]] = True
    names = tuple(compress(by_string, is_defined.tolist()))
    graph_id = np.where(is_defined, np.cumsum(is_defined, dtype=np.int32) - 1, -1)[place]

    defines = graph_id[flat_defined]
    definer_of = np.repeat(np.arange(n, dtype=np.int32), def_lengths)
    definer_files = definer_of[fastrank.stable_argsort(np, defines, len(names))]
    definer_start = fastrank.definer_starts(np, defines, len(names))

    references = graph_id[flat_referenced]
    kept = references >= 0  # names defined nowhere link nothing
    referrer_of = np.repeat(np.arange(n, dtype=np.intp), ref_lengths)
    kept_lengths = np.bincount(referrer_of[kept], minlength=n)
    ref_bounds = _bounds(np, kept_lengths)
    return RefGraph(
        paths=paths,
        names=names,
        definer_files=_array("i", definer_files),
        definer_start=_array("q", definer_start),
        defines=FlatRows(_array("i", defines), _bounds(np, def_lengths)),
        ref_ids=FlatRows(_array("i", references[kept]), ref_bounds),
        ref_counts=FlatRows(_array("i", flat_counts[kept]), ref_bounds),
    )


_SYMBOLS = attrgetter("definitions.symbols")  # what symbols_of reads


def _symbols(entries: Mapping[str, FileEntry]) -> tuple[tuple[str, ...], list[FileSymbols]] | None:
    """The sorted paths and each file's ids, or None unless every entry keeps ids into one
    table."""
    if not entries:
        return None
    paths = tuple(entries)
    if not all(map(lt, paths, islice(paths, 1, None))):  # C-level: 78k pairs in ~5 ms
        paths = tuple(sorted(paths))
    try:  # symbols_of for each, in C: an entry made by hand holds no ``symbols`` there
        symbols = list(map(_SYMBOLS, map(entries.__getitem__, paths)))
    except AttributeError:
        return None
    if not all(map(isinstance, symbols, repeat(FileSymbols))):
        return None
    table = symbols[0].table
    if not all(map(is_, map(attrgetter("table"), symbols), repeat(table))):
        return None
    return paths, symbols


def stable_ranks(entries: Mapping[str, FileEntry]) -> dict[str, float] | None:
    """``ranking.pagerank(reference_graph(entries))``, bit for bit, made from the index's ids
    without the graph: ids become their places in the table's string order, which ascend
    with the strings as graph ids do, so every slot, run and sum of the walk comes in the
    same order (a name no file defines has no definer and no edge either way); the names'
    string tests read the table's packed bytes. No name is made a string (the kernel's 2.3 M
    took ~0.3 s), no definer list is sorted (~0.2 s), no row is copied into the graph (~1.1 s
    of a first kernel render in all, against ~0.6 s here). None when it cannot be: too few
    edges for numpy to pay, no C kernel, ids not into one table, definitions out of order."""
    np, kernel = fastrank._np(), fastrank._kernel()
    # walk_runs came after count_starts and packed_name_tests's ``used``: an older build
    # ranks by the graph
    if np is None or not hasattr(kernel, "walk_runs") or len(entries) < MIN_FILES:
        return None
    made = _symbols(entries)
    if made is None:
        return None
    paths, symbols = made
    ref_lengths, ref_ids = joined_rows(np, [s.referenced for s in symbols])
    if len(ref_ids) < fastrank.MIN_EDGES:
        return None
    def_lengths, def_ids = joined_rows(np, [s.defined for s in symbols])
    _, counts = joined_rows(np, [s.counts for s in symbols])
    table = symbols[0].table
    positions, joined = table.places()
    place = np.frombuffer(positions, dtype=np.int32)
    if max(_top(np, def_ids), _top(np, ref_ids)) >= len(place):
        return None  # ids the places do not cover: added since (the graph's way sees them)
    # The joined ids become places and are let go: what is alive while the walk's arrays are
    # made is first-touched memory, the most of a first ranking's system time.
    defined, name = place[def_ids], place[ref_ids]
    del def_ids, ref_ids

    def weigh(ids: Any, definers: Any) -> Any:
        if joined is None:  # the names are strings already
            by_string = table.order()[0]
            return fastrank.kernel_name_weights(np, kernel, by_string, ids, definers, frozenset())
        every = np.empty(len(place), dtype=np.uint8)  # one pass in order beats a seek per name
        starts = np.empty(len(place) + 1, dtype=np.int64)
        used = np.zeros(len(place), dtype=np.uint8)
        used[ids] = 1  # only these are tested (the kernel's 250k of 2.3 M)
        kernel.packed_name_tests(joined, len(place), every, starts, used)
        tests = every[ids]

        def names_of(picked: Any) -> list[str]:
            return [
                str(joined[starts[j] : starts[j + 1] - 1], *NAME_ENCODING)
                for j in ids[picked].tolist()
            ]

        return fastrank.weights_of_tests(np, tests, definers, frozenset(), names_of)

    arrays = fastrank.walk_from_rows(
        np, kernel, fastrank.row_bounds(np, ref_lengths), name, counts,
        fastrank.row_bounds(np, def_lengths), defined,
        fastrank.definer_starts(np, defined, len(place)), weigh,
    )  # fmt: skip
    if arrays is None:
        return None
    teleport = [1.0 / len(paths)] * len(paths)  # ranking.teleport_weights without a preference
    ranks = fastrank.power_iteration(arrays, teleport, DAMPING, MAX_ITERATIONS, TOLERANCE)
    return None if ranks is None else dict(zip(paths, ranks, strict=True))


def _top(np: Any, ids: Any) -> int:
    return int(ids.max()) if len(ids) else -1


_DTYPES = {"i": "int32", "q": "int64"}  # array typecodes on Linux/macOS: int and long long


def _array(code: str, values: Any) -> array[int]:
    out = array(code)
    out.frombytes(values.astype(_DTYPES[code]).tobytes())
    return out


def _bounds(np: Any, lengths: Any) -> array[int]:
    """Row bounds (0, then the running total of ``lengths``) as the int64 array FlatRows keeps."""
    return _array("q", fastrank.row_bounds(np, lengths))
