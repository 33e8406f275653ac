"""The reference graph and PageRank, on FileEntry records built by hand."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from pathlib import Path

import pytest

from lsp_agent.context import fastrank, persist
from lsp_agent.context.neighbourhood import LazyRows, local_pagerank
from lsp_agent.context.ranking import (
    FlatRows,
    RefGraph,
    Walk,
    build_graph,
    compact_graph,
    mentioned_identifiers,
    name_weight,
    name_weights,
    order,
    pagerank,
    patch_graph,
    summarize,
)
from lsp_agent.index.model import Definition, FileEntry, Reference


def fe(path: str, defines: Sequence[str] = (), refs: Sequence[str] = ()) -> FileEntry:
    definitions = tuple(
        Definition(n, "function", i, 0, i, 1, f"def {n}():", "") for i, n in enumerate(defines)
    )
    references = tuple(Reference(n, "call", i, 0) for i, n in enumerate(refs))
    return FileEntry(path, "python", 1, 0, path, 1, definitions, references)


def graph_of(*entries: FileEntry) -> RefGraph:
    return build_graph({e.path: summarize(e) for e in entries})


def test_the_file_everyone_uses_ranks_first() -> None:
    graph = graph_of(
        fe("core.py", ["load_config"]),
        fe("a.py", ["a_main"], ["load_config"]),
        fe("b.py", ["b_main"], ["load_config", "load_config"]),
        fe("c.py", ["c_main"], ["load_config", "a_main"]),
        fe("d.py"),
    )
    scores = pagerank(graph)
    assert order(scores)[0] == "core.py"
    assert order(scores)[1] == "a.py"  # referenced once
    assert abs(sum(scores.values()) - 1.0) < 1e-9
    # b, c, d receive nothing: equal scores, ties broken by path
    assert order(scores)[2:] == ["b.py", "c.py", "d.py"]


def test_self_references_do_not_count() -> None:
    graph = graph_of(
        fe("selfish.py", ["helper_function"], ["helper_function"] * 50),
        fe("other.py", ["other_thing"], []),
    )
    scores = pagerank(graph)
    assert abs(scores["selfish.py"] - scores["other.py"]) < 1e-9


def test_weights_follow_the_repo_map_rules() -> None:
    nothing: frozenset[str] = frozenset()
    assert name_weight("load_config", 1, nothing) == 10  # long snake case
    assert name_weight("LoadConfig", 1, nothing) == 10  # long camel case
    assert name_weight("run", 1, nothing) == 1
    assert name_weight("_private", 1, nothing) == 0.1
    assert name_weight("run", 6, nothing) == 0.1  # defined in many files
    assert name_weight("run", 1, frozenset({"run"})) == 10  # mentioned in the instruction
    assert mentioned_identifiers("fix load_config in cfg.py") >= {"load_config", "cfg", "py"}


def test_mentioned_names_shift_the_ranking() -> None:
    entries = [
        fe("x.py", ["run"]),
        fe("y.py", ["go"]),
        fe("user.py", [], ["run", "go", "go"]),
    ]
    graph = graph_of(*entries)
    plain = pagerank(graph)
    assert plain["y.py"] > plain["x.py"]
    boosted = pagerank(graph, mentioned=frozenset({"run"}))
    assert boosted["x.py"] > boosted["y.py"]


def test_personalization_pulls_toward_the_focus_neighbourhood() -> None:
    graph = graph_of(
        fe("hub.py", ["shared_util"]),
        fe("left.py", ["left_api"], ["shared_util"]),
        fe("right.py", ["right_api"], ["shared_util"]),
        fe("uses_left.py", [], ["left_api"]),
        fe("uses_right.py", [], ["right_api"]),
    )
    toward = pagerank(graph, personalization={"uses_left.py": 1.0})
    assert toward["left.py"] > toward["right.py"]
    walk = Walk(graph)
    local = local_pagerank(walk, {"uses_left.py": 1.0}, epsilon=1e-6)
    assert order(local)[:3] == ["uses_left.py", "left.py", "hub.py"]
    assert local.get("right.py", 0.0) < local["left.py"]


def test_ranking_does_not_depend_on_insertion_order() -> None:
    entries = [fe(f"m{i}.py", [f"func_{i}"], [f"func_{(i * 7) % 13}"]) for i in range(13)]
    forward = pagerank(graph_of(*entries))
    backward = pagerank(graph_of(*reversed(entries)))
    assert forward == backward
    assert order(forward) == order(backward)


def reference_pagerank(entries: Sequence[FileEntry]) -> dict[str, float]:
    """The ranking written as plain per-item loops (the original formulation): the vectorised
    code must reproduce it bit for bit, or the snapshot bytes would drift."""
    files = sorted(entries, key=lambda e: e.path)
    definers: dict[str, list[int]] = {}
    for i, e in enumerate(files):
        for name in sorted({d.name for d in e.definitions}):
            definers.setdefault(name, []).append(i)
    n = len(files)
    out: list[list[tuple[str, float]]] = [[] for _ in range(n)]  # (name, share per target)
    self_share = [0.0] * n
    for i, e in enumerate(files):
        counts: dict[str, int] = {}
        for r in e.references:
            counts[r.name] = counts.get(r.name, 0) + 1
        rows, total = [], 0.0
        for name in sorted(counts):
            if name not in definers:
                continue
            targets = len(definers[name]) - (i in definers[name])
            if targets <= 0:
                continue
            w = name_weight(name, len(definers[name]), frozenset()) * counts[name] ** 0.5
            rows.append((name, w, targets))
            total += w * targets
        for name, w, targets in rows:
            out[i].append((name, w / total))
            if targets < len(definers[name]):
                self_share[i] += w / total
    rank = [1.0 / n] * n
    for _ in range(100):
        unit: dict[str, float] = {}
        for name in sorted(definers):
            terms = [rank[i] * s for i in range(n) for m, s in out[i] if m == name]
            if terms:
                unit[name] = sum(terms)
        dangling = sum(rank[i] for i in range(n) if not out[i])
        leak = 0.85 * dangling + (1.0 - 0.85)
        new = []
        for i, e in enumerate(files):
            own = sorted({d.name for d in e.definitions})
            incoming = sum(unit[name] for name in own if name in unit)
            new.append(0.85 * (incoming - rank[i] * self_share[i]) + leak * (1.0 / n))
        delta = sum(abs(a - b) for a, b in zip(new, rank, strict=True))
        rank = new
        if delta < 1e-5:
            break
    return {e.path: r for e, r in zip(files, rank, strict=True)}


def mixed_entries() -> list[FileEntry]:
    """Self references, names with many definers (>5), names defined nowhere, a lonely file."""
    names = ["load_config", "Shop", "_private_helper", "run", "ParseError", "x"]
    entries = []
    for i in range(23):
        defines = [names[i % 6], f"own_{i}"] + (["run"] if i % 3 == 0 else [])
        refs = [names[(i * 5 + k) % 6] for k in range(i % 7)] + [f"own_{(i * 7) % 23}", "print"]
        entries.append(fe(f"pkg/m{i:02}.py", defines, refs * (1 + i % 3)))
    entries.append(fe("lonely.py"))
    return entries


def test_vectorised_ranking_matches_plain_loops_bit_for_bit() -> None:
    entries = mixed_entries()
    assert pagerank(graph_of(*entries), accelerate=False) == reference_pagerank(entries)


def test_numpy_iteration_gives_the_same_scores_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastrank, "MIN_EDGES", 0)  # accelerate even this small graph
    graph = graph_of(*mixed_entries())
    walk = Walk(graph)
    teleport = [1.0 / len(graph.paths)] * len(graph.paths)
    assert fastrank.power_iteration(walk, teleport, 0.85, 100, 1e-5) is not None  # numpy ran
    assert pagerank(graph, walk=walk) == pagerank(graph, walk=walk, accelerate=False)
    toward = {"pkg/m03.py": 1.0, "lonely.py": 0.5}
    assert pagerank(graph, personalization=toward) == pagerank(
        graph, personalization=toward, accelerate=False
    )


def test_without_numpy_or_on_a_small_graph_the_plain_loop_ranks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    graph = graph_of(*mixed_entries())
    walk = Walk(graph)
    teleport = [1.0 / len(graph.paths)] * len(graph.paths)
    assert fastrank.power_iteration(walk, teleport, 0.85, 100, 1e-5) is None  # small graph
    monkeypatch.setattr(fastrank, "MIN_EDGES", 0)
    monkeypatch.setattr(fastrank, "_numpy", None)
    monkeypatch.setattr(fastrank, "_missing", True)  # as if numpy were not installed
    assert fastrank.power_iteration(walk, teleport, 0.85, 100, 1e-5) is None
    assert pagerank(graph) == reference_pagerank(mixed_entries())


def test_lazy_rows_push_the_same_mass_as_a_whole_walk() -> None:
    graph = graph_of(*mixed_entries())
    seeds = {"pkg/m04.py": 1.0, "pkg/m11.py": 0.5}
    mentioned = frozenset({"run"})
    lazy = local_pagerank(LazyRows(graph, mentioned), seeds, epsilon=1e-6)
    assert lazy == local_pagerank(Walk(graph, mentioned), seeds, epsilon=1e-6)
    assert len(lazy) > 5


def test_a_reference_only_change_patches_the_graph_exactly() -> None:
    entries = mixed_entries()
    graph = graph_of(*entries)
    edited = fe("pkg/m05.py", ["x", "own_5"], ["run", "Shop", "Shop", "nowhere"])
    assert summarize(edited).defines == summarize(entries[5]).defines
    patched = patch_graph(graph, {edited.path: summarize(edited)})
    fresh = graph_of(*entries[:5], edited, *entries[6:])
    assert patched is not None
    for field in ("paths", "names", "definer_files", "definer_start", "defines"):
        assert list(getattr(patched, field)) == list(getattr(fresh, field))
    assert list(map(list, patched.ref_ids)) == list(map(list, fresh.ref_ids))
    assert list(map(list, patched.ref_counts)) == list(map(list, fresh.ref_counts))
    assert pagerank(patched) == pagerank(fresh)
    # the local push over rows carried across the patch (and a second one) is exact too
    seeds = {"pkg/m05.py": 1.0, "pkg/m00.py": 1.0}
    carried = LazyRows.after_patch(Walk(graph), patched, frozenset({graph.index_of(edited.path)}))
    assert local_pagerank(carried, seeds, epsilon=1e-6) == local_pagerank(
        Walk(fresh), seeds, epsilon=1e-6
    )
    again = fe("pkg/m07.py", summarize(entries[7]).defines, ["x", "own_3", "own_3"])
    twice = patch_graph(patched, {again.path: summarize(again)})
    assert twice is not None
    chained = LazyRows.after_patch(carried, twice, frozenset({graph.index_of(again.path)}))
    fresh_twice = graph_of(*entries[:5], edited, entries[6], again, *entries[8:])
    assert local_pagerank(chained, seeds, epsilon=1e-6) == local_pagerank(
        LazyRows(fresh_twice), seeds, epsilon=1e-6
    )
    new_name = fe("pkg/m05.py", ["x", "own_5", "brand_new"], ["run"])
    assert patch_graph(graph, {new_name.path: summarize(new_name)}) is None
    assert patch_graph(graph, {"pkg/new.py": summarize(fe("pkg/new.py"))}) is None


def assert_same_arrays(a: fastrank.Arrays, b: fastrank.Arrays) -> None:
    assert (a.n, a.slots) == (b.n, b.slots)
    for field in ("src", "coeff", "slot", "inc", "inc_file", "self_share", "dangling"):
        left, right = getattr(a, field), getattr(b, field)
        assert left.dtype == right.dtype and left.shape == right.shape, field
        assert left.tobytes() == right.tobytes(), field  # the same bits, not just close


@pytest.mark.parametrize("mentioned", [frozenset(), frozenset({"run", "load_config"})])
@pytest.mark.parametrize("compact", [False, True])
def test_the_walk_made_with_numpy_is_the_walk_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, mentioned: frozenset[str], compact: bool
) -> None:
    monkeypatch.setattr(fastrank, "MIN_EDGES", 0)
    graph = graph_of(*mixed_entries())
    graph = compact_graph(graph) if compact else graph
    direct = fastrank.graph_arrays(graph, mentioned)
    assert direct is not None
    assert_same_arrays(direct, fastrank.Arrays(fastrank._np(), Walk(graph, mentioned)))
    if not mentioned:  # pagerank with no walk given goes through the direct arrays
        assert pagerank(graph) == reference_pagerank(mixed_entries())


def test_name_weights_are_name_weight_bit_for_bit() -> None:
    names = [
        *("load_config", "LoadConfig", "run", "_private", "RUN", "___", "_", "", "a_b"),
        *("_long_private_name", "ÉtatGlobal", "snake_é_case", "x" * 9, "ABC_DEF", "a1_b2c3d"),
    ]
    for mentioned in (frozenset(), frozenset({"run", "_private", "LoadConfig"})):
        for count in (1, 5, 6):
            expected = [name_weight(name, count, mentioned) for name in names]
            found = name_weights(names, [count] * len(names), mentioned)
            assert [w.hex() for w in found] == [w.hex() for w in expected]


def test_compact_rows_are_one_flat_array_and_a_patch_copies_it_once() -> None:
    entries = mixed_entries()
    graph = compact_graph(graph_of(*entries))
    assert isinstance(graph.ref_ids, FlatRows) and isinstance(graph.defines, FlatRows)
    rows = graph.ref_ids
    assert [list(row) for row in rows] == [list(row) for row in graph_of(*entries).ref_ids]
    assert list(rows[-1]) == list(rows[len(rows) - 1]) and len(rows[1:3]) == 2
    with pytest.raises(IndexError):
        rows[len(rows)]
    # Rows that grow, shrink and keep their length, in one patch.
    changes = {0: [1, 2, 3, 4, 5], 3: [], 7: list(rows[7])[:1] or [9]}
    replaced = rows.replaced(changes)
    expected = [changes.get(k, list(row)) for k, row in enumerate(rows)]
    assert [list(row) for row in replaced] == expected
    assert [list(row) for row in rows] == [list(row) for row in graph_of(*entries).ref_ids]
    assert replaced == FlatRows.of(expected) and replaced != rows
    with pytest.raises(ValueError):
        FlatRows(array("i", [1, 2]), array("q", [0, 1]))  # bounds that miss the end


def test_a_compact_graph_persists_and_reads_back_as_flat_rows(tmp_path: Path) -> None:
    graph = compact_graph(graph_of(*mixed_entries()))
    persist.save_graph(tmp_path, "key", graph)
    loaded = persist.load_graph(tmp_path, "key")
    assert loaded is not None
    fields = ("paths", "names", "definer_files", "definer_start", "defines", "ref_ids")
    for field in (*fields, "ref_counts"):
        assert getattr(loaded, field) == getattr(graph, field), field
    assert isinstance(loaded.ref_counts, FlatRows)
    assert pagerank(loaded) == pagerank(graph)
