"""The C loops of context/_rank.c give the bits numpy gives: PageRank's steps and stable sorts."""

from __future__ import annotations

import functools
import math
import operator
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lsp_agent.config import IndexSettings
from lsp_agent.context import fastrank
from lsp_agent.context.idgraph import reference_graph
from lsp_agent.context.ranking import Walk, compact_graph, name_weights, pagerank
from lsp_agent.index.workspace import WorkspaceIndex
from tests.context.test_idgraph import tree  # noqa: F401  # the fixture: real stdlib packages
from tests.context.test_ranking import (
    assert_same_arrays,
    graph_of,
    mixed_entries,
    reference_pagerank,
)


def test_the_kernel_is_built() -> None:
    # The install compiles it wherever a C compiler is (CI has one): a missing build would only
    # make ranking slower, so nothing else would notice it.
    assert fastrank._kernel() is not None


def real_graph(root: Path) -> Any:
    index = WorkspaceIndex(root, IndexSettings(), cache_path=None)
    index.build(jobs=1)
    return reference_graph(index.entries())


class Counting:
    """The kernel, noting which of its functions are looked up."""

    def __init__(self, real: Any, calls: list[str]) -> None:
        self._real, self._calls = real, calls

    def __getattr__(self, name: str) -> Any:
        self._calls.append(name)
        return getattr(self._real, name)


@contextmanager
def kernel_as(module: Any) -> Iterator[None]:
    """fastrank's kernel for the block: None to load the built one, False to hide it."""
    saved = fastrank._kernel_module
    fastrank._kernel_module = module
    try:
        yield
    finally:
        fastrank._kernel_module = saved


def ranks(graph: Any, mentioned: frozenset[str], *, kernel: bool) -> list[float]:
    arrays = fastrank.graph_arrays(graph, mentioned)
    assert arrays is not None
    teleport = [1.0 / arrays.n] * arrays.n
    with kernel_as(None if kernel else False):
        if kernel:
            assert arrays.runs(fastrank._np()) is not None  # the C path ran
        result = fastrank.power_iteration(arrays, teleport, 0.85, 100, 1e-5)
    assert result is not None
    return result


@pytest.mark.parametrize("mentioned", [frozenset(), frozenset({"loads", "Message", "run"})])
def test_c_steps_rank_real_code_as_bincount_and_the_plain_loop_do(
    tree: Path,  # noqa: F811
    mentioned: frozenset[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fastrank, "MIN_EDGES", 0)
    graph = real_graph(tree)
    with_c = ranks(graph, mentioned, kernel=True)
    assert with_c == ranks(graph, mentioned, kernel=False)  # the same floats, not just close
    plain = pagerank(graph, mentioned=mentioned, accelerate=False)
    assert with_c == list(plain.values())
    assert len(set(with_c)) > 50  # a real spread of scores, not a uniform vector


def test_c_steps_match_the_reference_loop_with_a_teleport_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fastrank, "MIN_EDGES", 0)
    graph = graph_of(*mixed_entries())
    toward = {"pkg/m03.py": 1.0, "lonely.py": 0.5}
    assert pagerank(graph, personalization=toward) == pagerank(
        graph, personalization=toward, accelerate=False
    )
    assert pagerank(graph) == reference_pagerank(mixed_entries())


def test_ungrouped_arrays_are_summed_by_bincount(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastrank, "MIN_EDGES", 0)
    np_ = fastrank._np()
    arrays = fastrank.Arrays(np_, Walk(graph_of(*mixed_entries())))
    assert arrays.runs(np_) is not None
    shuffled = fastrank.Arrays(np_, Walk(graph_of(*mixed_entries())))
    order = np.arange(len(shuffled.src))[::-1].copy()  # edges no longer grouped by slot
    shuffled.src, shuffled.coeff, shuffled.slot = (
        shuffled.src[order], shuffled.coeff[order], shuffled.slot[order]
    )  # fmt: skip
    assert shuffled.runs(np_) is None

    class Refuse:
        def push(self, *args: object) -> None:
            raise AssertionError("the C step ran on arrays it cannot sum in order")

    monkeypatch.setattr(fastrank, "_kernel_module", Refuse())
    teleport = [1.0 / shuffled.n] * shuffled.n
    assert fastrank.power_iteration(shuffled, teleport, 0.85, 100, 1e-5) is not None


def test_stable_order_is_numpys_stable_argsort() -> None:
    rng = random.Random(7)
    np_ = fastrank._np()
    for size, keys in ((0, 1), (1, 1), (1000, 3), (50_000, 40_000), (20_000, 1)):
        values = np_.array([rng.randrange(keys) for _ in range(size)], dtype=np_.int32)
        got = fastrank.stable_argsort(np_, values, keys)
        want = np_.argsort(values, kind="stable")
        assert got.dtype == want.dtype and got.tolist() == want.tolist()


def test_bad_arrays_get_clear_errors() -> None:
    from lsp_agent.context import _rank  # type: ignore[attr-defined]

    out = np.empty(3, dtype=np.intp)
    with pytest.raises(ValueError, match="keys: id 5 at 1 is outside"):
        _rank.stable_order(np.array([0, 5, 1], dtype=np.intp), 3, out)
    with pytest.raises(TypeError, match="keys"):
        _rank.stable_order(np.array([0.5, 1.0, 2.0]), 3, out)
    with pytest.raises(ValueError, match="as long as"):
        _rank.stable_order(np.array([0, 1], dtype=np.intp), 3, out)

    f64, i32, i64 = np.float64, np.int32, np.int64
    rank, unit, incoming = np.full(2, 0.5), np.empty(1), np.empty(2)
    good = dict(
        src=np.array([0, 1], dtype=i32),
        coeff=np.array([0.5, 0.5], dtype=f64),
        slot_bounds=np.array([0, 2], dtype=i64),
        inc=np.array([0], dtype=i32),
        inc_bounds=np.array([0, 1, 1], dtype=i64),
    )

    def push(**changed: Any) -> None:
        args = {**good, **changed}
        _rank.push(
            rank, args["src"], args["coeff"], args["slot_bounds"], args["inc"],
            args["inc_bounds"], unit, incoming,
        )  # fmt: skip

    push()
    assert unit.tolist() == [0.5] and incoming.tolist() == [0.5, 0.0]
    with pytest.raises(ValueError, match="src: id 2 at 1 is outside"):
        push(src=np.array([0, 2], dtype=i32))
    with pytest.raises(TypeError, match="src"):
        push(src=np.array([0, 1], dtype=i64))
    with pytest.raises(ValueError, match="bounds do not span"):
        push(slot_bounds=np.array([0, 1], dtype=i64))
    with pytest.raises(ValueError, match="not ascending"):
        push(inc_bounds=np.array([0, 2, 1], dtype=i64), inc=np.array([0], dtype=i32))
    with pytest.raises(ValueError, match="lengths do not agree"):
        push(coeff=np.array([0.5], dtype=f64))


def neumaier(values: list[float]) -> float:
    """CPython 3.12's float sum, written out: Neumaier's compensated sum."""
    total = compensation = 0.0
    for x in values:
        t = total + x
        compensation += (total - t) + x if abs(total) >= abs(x) else (x - t) + total
        total = t
    return total + compensation if compensation and math.isfinite(compensation) else total


def test_the_loops_scalar_sums_round_as_the_interpreters_sum() -> None:
    from lsp_agent.context import _rank  # type: ignore[attr-defined]

    kind = fastrank._sum_kind(np, _rank)
    assert kind is not None  # CPython's sum is one of the two: the whole loop may run in C
    rng = random.Random(3)
    samples = [[1e16, 1.0, -1e16], [0.1] * 10, []]
    samples += [[rng.uniform(-1.0, 1.0) * 10 ** rng.randrange(-8, 8) for _ in range(300)]]
    samples += [[rng.uniform(0.0, 1e-4) for _ in range(5000)]]
    for values in samples:
        array_ = np.array(values, dtype=np.float64)
        assert _rank.python_sum(array_, kind) == sum(values)
        assert _rank.python_sum(array_, False) == functools.reduce(operator.add, values, 0.0)
        assert _rank.python_sum(array_, True) == neumaier(values)
    assert _rank.python_sum(np.array(samples[0]), False) != _rank.python_sum(
        np.array(samples[0]), True
    )  # the probe tells the two apart


def test_the_whole_loop_in_c_ranks_as_the_steps_do(
    tree: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fastrank, "MIN_EDGES", 0)
    graph = real_graph(tree)
    arrays = fastrank.graph_arrays(graph)
    assert arrays is not None
    teleport = [1.0 / arrays.n] * arrays.n
    calls: list[str] = []
    real = fastrank._kernel()
    results = []
    for threads, kind in ((1, None), (2, "interpreter"), (1, "interpreter")):
        monkeypatch.setattr(fastrank, "THREADS", threads)
        kinds = {"kind": None} if kind is None else {}
        monkeypatch.setattr(fastrank, "_sum_kinds", kinds)
        monkeypatch.setattr(fastrank, "_kernel_module", Counting(real, calls))
        calls.clear()
        results.append(fastrank.power_iteration(arrays, teleport, 0.85, 100, 1e-5))
        assert ("iterate" in calls) == (kind is not None)
        assert ("push" in calls) == (kind is None)
    assert results[0] == results[1] == results[2]
    assert len(set(results[0] or ())) > 50


def test_the_loop_refuses_bad_arrays() -> None:
    from lsp_agent.context import _rank  # type: ignore[attr-defined]

    f64, i32, i64 = np.float64, np.int32, np.int64
    good = dict(
        rank=np.full(2, 0.5),
        src=np.array([0, 1], dtype=i32),
        coeff=np.array([0.5, 0.5], dtype=f64),
        slot_bounds=np.array([0, 2], dtype=i64),
        inc=np.array([0], dtype=i32),
        inc_bounds=np.array([0, 1, 1], dtype=i64),
        self_share=np.zeros(2),
        dangling=np.array([1], dtype=np.intp),
        teleport=np.full(2, 0.5),
    )

    def iterate(**changed: Any) -> int:
        args = {**good, **changed}
        return int(_rank.iterate(*args.values(), 0.85, 100, 1e-9, False, 2))

    assert 1 < iterate(rank=good["rank"].copy()) <= 100
    with pytest.raises(ValueError, match="dangling: id 2 at 0 is outside"):
        iterate(dangling=np.array([2], dtype=np.intp))
    with pytest.raises(ValueError, match="lengths do not agree"):
        iterate(teleport=np.full(3, 0.5))
    with pytest.raises(TypeError, match="rank"):
        iterate(rank=np.full(2, 0.5, dtype=np.float32))


def numpy_arrays(graph: Any, mentioned: frozenset[str]) -> fastrank.Arrays:
    """graph_arrays the numpy way: the kernel hidden."""
    with kernel_as(False):
        arrays = fastrank.graph_arrays(graph, mentioned)
    assert arrays is not None
    return arrays


@pytest.mark.parametrize("mentioned", [frozenset(), frozenset({"loads", "Message", "run"})])
def test_the_walk_arrays_made_in_c_are_numpys_bit_for_bit_on_real_code(
    tree: Path,  # noqa: F811
    mentioned: frozenset[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fastrank, "MIN_EDGES", 0)
    graph = real_graph(tree)
    calls: list[str] = []
    real = fastrank._kernel()
    monkeypatch.setattr(fastrank, "_kernel_module", Counting(real, calls))
    with_c = fastrank.graph_arrays(graph, mentioned)
    assert {"edge_targets", "walk_runs", "name_tests"} <= set(calls)  # the C passes ran
    monkeypatch.setattr(fastrank, "_kernel_module", real)
    by_numpy = numpy_arrays(graph, mentioned)
    assert with_c is not None and with_c.slots > 300 and len(with_c.dangling) > 0
    assert_same_arrays(with_c, by_numpy)
    assert [b.tobytes() for b in with_c.runs(np)] == [  # type: ignore[union-attr]
        b.tobytes()
        for b in by_numpy.runs(np)  # type: ignore[union-attr]
    ]


@pytest.mark.parametrize("compact", [False, True])
def test_the_walk_arrays_made_in_c_are_numpys_on_the_mixed_graph(
    compact: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastrank, "MIN_EDGES", 0)
    graph = graph_of(*mixed_entries())
    graph = compact_graph(graph) if compact else graph
    for mentioned in (frozenset(), frozenset({"run", "load_config"})):
        with_c = fastrank.graph_arrays(graph, mentioned)
        assert with_c is not None
        assert_same_arrays(with_c, numpy_arrays(graph, mentioned))
        assert_same_arrays(with_c, fastrank.Arrays(np, Walk(graph, mentioned)))


def test_definitions_out_of_order_are_left_to_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastrank, "MIN_EDGES", 0)
    graph = compact_graph(graph_of(*mixed_entries()))
    rows = [list(row) for row in graph.defines]
    file = next(i for i, row in enumerate(rows) if len(row) > 1)
    rows[file].reverse()  # a graph made by other code: the C search needs them ascending
    shuffled = replace(graph, defines=rows)
    kernel = fastrank._kernel()
    np_ = fastrank._np()
    n_names = len(graph.names)
    lengths, names = fastrank.joined_rows(np_, shuffled.ref_ids)
    def_lengths, defined = fastrank.joined_rows(np_, shuffled.defines)
    found = kernel.edge_targets(
        np_.concatenate([[0], np_.cumsum(lengths)]).astype(np_.int64), names,
        np_.concatenate([[0], np_.cumsum(def_lengths)]).astype(np_.int64), defined,
        np_.asarray(graph.definer_start, dtype=np_.int64), np_.empty(len(names), dtype=np_.int32),
        np_.empty(len(names), dtype=np_.uint8), np_.empty(n_names, dtype=np_.uint8),
    )  # fmt: skip
    assert found is None
    arrays = fastrank.graph_arrays(shuffled)
    assert arrays is not None and arrays.n == len(graph.paths)


def test_edge_targets_split_over_two_threads_are_one_threads() -> None:
    # Past 2**20 edges the files are split in two halves, one per thread: a random graph that
    # large gets the arrays a plain numpy reference makes.
    from lsp_agent.context import _rank  # type: ignore[attr-defined]

    rng = np.random.default_rng(16)
    files, name_count = 3000, 60_000
    ref_lengths = rng.integers(0, 800, files)
    assert ref_lengths.sum() > 1 << 20
    def_rows = [np.unique(rng.integers(0, name_count, rng.integers(0, 40))) for _ in range(files)]
    def_lengths = np.array([len(row) for row in def_rows])
    defined = np.concatenate(def_rows).astype(np.int32)
    # the first files reference the lower names, the last ones the upper: each thread marks
    # names the other never sees
    names = np.concatenate(
        [rng.integers(0, name_count // 2, n) + (i >= files // 2) * (name_count // 2)
         for i, n in enumerate(ref_lengths)]
    ).astype(np.int32)  # fmt: skip
    definers = np.bincount(defined, minlength=name_count)
    definer_start = np.concatenate([[0], np.cumsum(definers)]).astype(np.int64)
    ref_bounds = np.concatenate([[0], np.cumsum(ref_lengths)]).astype(np.int64)
    def_bounds = np.concatenate([[0], np.cumsum(def_lengths)]).astype(np.int64)
    targets = np.empty(len(names), dtype=np.int32)
    own = np.empty(len(names), dtype=np.uint8)
    used = np.empty(name_count, dtype=np.uint8)
    found = _rank.edge_targets(
        ref_bounds, names, def_bounds, defined, definer_start, targets, own, used
    )
    edge_file = np.repeat(np.arange(files), ref_lengths)
    def_file = np.repeat(np.arange(files), def_lengths)
    expected_own = np.isin(
        edge_file.astype(np.int64) * name_count + names,
        def_file.astype(np.int64) * name_count + defined,
    )
    expected_targets = np.maximum(definers[names] - expected_own, 0)
    expected_used = np.zeros(name_count, dtype=np.uint8)
    expected_used[names[expected_targets > 0]] = 1
    assert (own == expected_own).all() and (targets == expected_targets).all()
    assert (used == expected_used).all()
    kept = int((expected_targets > 0).sum())
    assert found == (kept, int(expected_used.sum()), int(expected_used[defined].sum()))
    assert 0 < kept < len(names) and expected_own.any()


def test_name_weights_in_c_are_name_weights_bit_for_bit(tree: Path) -> None:  # noqa: F811
    index = WorkspaceIndex(tree, IndexSettings(), cache_path=None)
    index.build(jobs=1)
    real = list(reference_graph(index.entries()).names)
    odd = ["load_config", "LoadConfig", "run", "_private", "RUN", "___", "_", "", "a_b"]
    odd += ["_long_private_name", "ÉtatGlobal", "snake_é_case", "x" * 9, "ABC_DEF", "a1_b2c3d"]
    odd += ["________", "12345678", "__init__", "_a_b_c_d", "ALLCAPS_", "ǅungla_x", "a" * 7]
    names = tuple(sorted({*real, *odd}))
    assert len(names) > 1000
    ids = np.arange(len(names), dtype=np.int64)
    rng = random.Random(5)
    definers = np.array([rng.choice((1, 5, 6, 40)) for _ in names], dtype=np.int64)
    kernel = fastrank._kernel()
    for mentioned in (frozenset(), frozenset({"run", "_private", "LoadConfig", "ÉtatGlobal"})):
        found = fastrank.kernel_name_weights(np, kernel, names, ids, definers, mentioned)
        expected = name_weights(list(names), definers.tolist(), mentioned)
        assert [w.hex() for w in found.tolist()] == [w.hex() for w in expected]
    assert len(set(expected)) >= 5  # the names reach many of the table's weights


def test_bad_walk_inputs_get_clear_errors() -> None:
    from lsp_agent.context import _rank  # type: ignore[attr-defined]

    i32, i64, u8 = np.int32, np.int64, np.uint8

    def targets(**changed: Any) -> Any:
        args = dict(
            ref_bounds=np.array([0, 2], dtype=i64), names=np.array([0, 1], dtype=i32),
            def_bounds=np.array([0, 1], dtype=i64), defined=np.array([0], dtype=i32),
            definer_start=np.array([0, 1, 2], dtype=i64), targets=np.empty(2, dtype=i32),
            own=np.empty(2, dtype=u8), used=np.empty(2, dtype=u8),
        )  # fmt: skip
        args.update(changed)
        return _rank.edge_targets(*args.values())

    assert targets() == (1, 1, 0)  # name 1's other definer is a way out; name 0 is its own
    with pytest.raises(ValueError, match="names: id 7 at 1 is outside"):
        targets(names=np.array([0, 7], dtype=i32))
    with pytest.raises(ValueError, match="lengths do not agree"):
        targets(used=np.empty(5, dtype=u8))
    with pytest.raises(ValueError, match="ref_bounds: bounds do not span"):
        targets(ref_bounds=np.array([0, 1], dtype=i64))
    with pytest.raises(TypeError, match="targets"):
        targets(targets=np.empty(2, dtype=i64))
    with pytest.raises(ValueError, match="out must be as long"):
        _rank.name_tests(("a",), np.array([0], dtype=i64), np.empty(2, dtype=u8))
    with pytest.raises(ValueError, match="ids: id 3 at 0"):
        _rank.name_tests(("a",), np.array([3], dtype=i64), np.empty(1, dtype=u8))
    with pytest.raises(TypeError, match="strings"):
        _rank.name_tests((b"a",), np.array([0], dtype=i64), np.empty(1, dtype=u8))
    intp = np.intp

    def runs(**changed: Any) -> Any:
        args = dict(
            ref_bounds=np.array([0, 1], dtype=i64), names=np.array([0], dtype=i32),
            counts=np.array([1], dtype=i32), def_bounds=np.array([0, 0], dtype=i64),
            defined=np.array([], dtype=i32), targets=np.array([1], dtype=i32),
            own=np.array([0], dtype=u8), weights=np.ones(1), src=np.empty(1, dtype=i32),
            coeff=np.empty(1), slot_bounds=np.empty(2, dtype=i64), inc=np.empty(0, dtype=i32),
            inc_bounds=np.empty(2, dtype=i64), self_share=np.empty(1),
            dangling=np.empty(1, dtype=intp),
        )  # fmt: skip
        args.update(changed)
        return _rank.walk_runs(*args.values()), args

    found, made = runs()  # one edge, one slot: file 0 leaves by it with all its share
    assert found == 0 and made["src"].tolist() == [0] and made["coeff"].tolist() == [1.0]
    assert made["slot_bounds"].tolist() == [0, 1] and made["inc_bounds"].tolist() == [0, 0]
    with pytest.raises(ValueError, match="src is not as long as the kept edges"):
        runs(src=np.empty(3, dtype=i32), coeff=np.empty(3))
    with pytest.raises(ValueError, match="negative targets"):
        runs(targets=np.array([-1], dtype=i32))
    with pytest.raises(ValueError, match="slot_bounds do not match"):
        runs(slot_bounds=np.empty(3, dtype=i64))
    with pytest.raises(TypeError, match="src"):
        runs(src=np.empty(1, dtype=i64))


def test_a_kernel_built_before_the_walk_passes_leaves_them_to_numpy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fastrank, "MIN_EDGES", 0)
    graph = compact_graph(graph_of(*mixed_entries()))
    real = fastrank._kernel()

    class Older:  # an extension built from an earlier _rank.c: steps and sorts only
        stable_order = real.stable_order
        iterate = real.iterate
        push = real.push
        python_sum = real.python_sum

    monkeypatch.setattr(fastrank, "_kernel_module", Older())
    arrays = fastrank.graph_arrays(graph)
    assert arrays is not None
    assert_same_arrays(arrays, numpy_arrays(graph, frozenset()))


def test_packed_name_tests_read_the_tables_bytes_as_name_tests_reads_strings() -> None:
    from lsp_agent.context import _rank  # type: ignore[attr-defined]

    names = ["load_config", "", "ÉtatGlobal", "_private_name", "ABCDEFGH", "x", "a_b_c_d_e", ""]
    joined = "\0".join(names).encode()
    packed, starts = np.empty(len(names), dtype=np.uint8), np.empty(len(names) + 1, dtype=np.int64)
    _rank.packed_name_tests(joined, len(names), packed, starts)
    strings = np.empty(len(names), dtype=np.uint8)
    _rank.name_tests(tuple(names), np.arange(len(names), dtype=np.int64), strings)
    assert packed.tolist() == strings.tolist() and 128 in packed.tolist()
    assert [joined[a : b - 1].decode() for a, b in pairwise(starts.tolist())] == names
    for wrong in (len(names) - 1, len(names) + 1):  # the bytes hold another number of names
        with pytest.raises(ValueError, match=f"do not hold {wrong} names"):
            _rank.packed_name_tests(
                joined, wrong, np.empty(wrong, dtype=np.uint8), np.empty(wrong + 1, dtype=np.int64)
            )
    with pytest.raises(ValueError, match="lengths do not agree"):
        _rank.packed_name_tests(joined, len(names), packed[:1], starts)
    _rank.packed_name_tests(b"", 0, packed[:0], starts[:1])  # no names
    with pytest.raises(ValueError, match="do not hold 0 names"):
        _rank.packed_name_tests(b"a", 0, packed[:0], starts[:1])


def test_packed_name_tests_test_only_the_names_marked_used() -> None:
    from lsp_agent.context import _rank  # type: ignore[attr-defined]

    names = ["load_config", "ÉtatGlobal", "_private_name", "x", "a_b_c_d_e", "ABCDEFGH"]
    joined = "\0".join(names).encode()
    every, starts = np.empty(len(names), dtype=np.uint8), np.empty(len(names) + 1, dtype=np.int64)
    _rank.packed_name_tests(joined, len(names), every, starts)
    used = np.array([1, 1, 0, 1, 0, 1], dtype=np.uint8)
    some, some_starts = np.full(len(names), 99, dtype=np.uint8), np.empty_like(starts)
    _rank.packed_name_tests(joined, len(names), some, some_starts, used)
    assert some.tolist() == [t if u else 0 for t, u in zip(every.tolist(), used, strict=True)]
    assert some[2] == 0 and every[2] != 0  # a marked-out name's bits were not made
    assert some_starts.tolist() == starts.tolist()  # every name's offset all the same
    with pytest.raises(ValueError, match="lengths do not agree"):
        _rank.packed_name_tests(joined, len(names), some, some_starts, used[:2])


def test_count_starts_are_the_running_counts_numpy_makes() -> None:
    from lsp_agent.context import _rank  # type: ignore[attr-defined]

    rng = np.random.default_rng(16)
    for size, limit in ((0, 1), (1, 1), (1000, 7), (50_000, 40_000)):
        ids = rng.integers(0, limit, size).astype(np.int32)
        expected = np.zeros(limit + 1, dtype=np.int64)
        np.cumsum(np.bincount(ids, minlength=limit), out=expected[1:])
        starts = np.full(limit + 1, -5, dtype=np.int64)
        _rank.count_starts(ids, starts)
        assert starts.tolist() == expected.tolist()
        assert fastrank.definer_starts(np, ids, limit).tolist() == expected.tolist()
    with pytest.raises(ValueError, match="outside"):
        _rank.count_starts(np.array([0, 3], dtype=np.int32), np.empty(3, dtype=np.int64))
    with pytest.raises(ValueError, match="outside"):
        _rank.count_starts(np.array([-1], dtype=np.int32), np.empty(3, dtype=np.int64))
    with pytest.raises(TypeError):
        _rank.count_starts(np.array([0], dtype=np.int64), np.empty(3, dtype=np.int64))
    with pytest.raises(ValueError, match="empty"):
        _rank.count_starts(np.array([], dtype=np.int32), np.empty(0, dtype=np.int64))


def test_definer_starts_without_the_c_pass_are_numpys(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = np.array([3, 0, 3, 1, 3], dtype=np.int32)
    with_c = fastrank.definer_starts(np, ids, 5).tolist()
    monkeypatch.setattr(fastrank, "_kernel_module", False)  # installed without a C compiler
    assert fastrank.definer_starts(np, ids, 5).tolist() == with_c == [0, 1, 2, 2, 5, 5]


def test_joined_rows_in_c_are_the_rows_bytes_joined(monkeypatch: pytest.MonkeyPatch) -> None:
    from array import array

    from lsp_agent.context import _rank  # type: ignore[attr-defined]

    rng = random.Random(3)
    rows = [array("i", [rng.randrange(-5, 10**6) for _ in range(rng.choice((0, 1, 7, 300)))])]
    for _ in range(500):
        rows.append(array("i", [rng.randrange(10**6) for _ in range(rng.randrange(40))]))
    calls: list[str] = []
    monkeypatch.setattr(fastrank, "_kernel_module", Counting(fastrank._kernel(), calls))
    lengths, flat = fastrank.joined_rows(np, rows)
    assert "join_int32" in calls
    assert flat.dtype == np.int32 and flat.tobytes() == b"".join(rows)
    assert lengths.tolist() == [len(r) for r in rows]
    bounds = np.empty(len(rows) + 1, dtype=np.int64)
    _rank.join_int32(rows, np.empty(len(flat), dtype=np.int32), bounds)
    assert bounds.tolist() == [0, *np.cumsum(lengths).tolist()]
    # rows that are no int32 buffers are read one by one, as before
    lists = [list(r) for r in rows[:50]]
    assert fastrank.joined_rows(np, lists)[1].tolist() == [x for r in lists for x in r]
    wide = [array("q", r) for r in rows[:50]]
    assert fastrank.joined_rows(np, wide)[1].tolist() == [x for r in lists for x in r]
    with pytest.raises(ValueError, match="shorter than the rows"):
        _rank.join_int32(rows, np.empty(len(flat) - 1, dtype=np.int32), bounds)
    with pytest.raises(ValueError, match="longer than the rows"):
        _rank.join_int32(rows, np.empty(len(flat) + 1, dtype=np.int32), bounds)
    with pytest.raises(ValueError, match="one longer than rows"):
        _rank.join_int32(rows, np.empty(len(flat), dtype=np.int32), bounds[:-1])
    with pytest.raises(TypeError, match="row"):
        _rank.join_int32([b"abcd"], np.empty(1, dtype=np.int32), bounds[:2])
