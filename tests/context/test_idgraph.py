"""The graph made from the index's name ids is the graph made from strings, field for field."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest

from lsp_agent.config import ContextSettings, IndexSettings
from lsp_agent.context import fastrank, idgraph, snapshot
from lsp_agent.context.idgraph import graph_from_ids, reference_graph
from lsp_agent.context.ranking import (
    RefGraph,
    Walk,
    build_graph,
    compact_graph,
    pagerank,
    summarize,
)
from lsp_agent.context.snapshot import SnapshotBuilder
from lsp_agent.index.model import Definition, FileEntry, Reference
from lsp_agent.index.workspace import WorkspaceIndex
from tests.context.test_ranking import assert_same_arrays

STDLIB = Path(sysconfig.get_paths()["stdlib"])
LANGS = Path(__file__).resolve().parent.parent / "fixtures" / "index" / "langs"
FIELDS = ("paths", "names", "definer_files", "definer_start", "defines", "ref_ids", "ref_counts")


def from_strings(entries: dict[str, FileEntry]) -> RefGraph:
    return compact_graph(build_graph({path: summarize(e) for path, e in entries.items()}))


def assert_same(a: RefGraph, b: RefGraph) -> None:
    for field in FIELDS:
        left, right = getattr(a, field), getattr(b, field)
        assert type(left) is type(right), field
        assert left == right, field
    if a.defines:
        assert type(a.defines[0]) is type(b.defines[0])


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Real code nobody here wrote: a few stdlib packages, and every language's fixture."""
    root = tmp_path / "tree"
    for package in ("json", "email", "asyncio", "concurrent", "importlib"):
        shutil.copytree(
            STDLIB / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copytree(LANGS, root / "langs")
    return root


@pytest.fixture
def ranks_from_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tree's few hundred files rank from ids: below both thresholds otherwise."""
    monkeypatch.setattr(idgraph, "MIN_FILES", 0)
    monkeypatch.setattr(fastrank, "MIN_EDGES", 0)


def test_the_graph_from_ids_is_the_graph_from_strings(tree: Path) -> None:
    index = WorkspaceIndex(tree, IndexSettings(), cache_path=None)
    index.build(jobs=1)
    entries = index.entries()
    graph = graph_from_ids(entries)
    assert graph is not None
    expected = from_strings(entries)
    assert len(expected.names) > 1000 and sum(map(len, expected.ref_ids)) > 1000
    assert_same(graph, expected)
    assert pagerank(graph) == pagerank(expected)  # bit for bit


def test_after_edits_and_a_warm_start_the_graphs_still_agree(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "index.sqlite"
    WorkspaceIndex(tree, IndexSettings(), cache_path=cache).build(jobs=1)
    index = WorkspaceIndex(tree, IndexSettings(), cache_path=cache)  # the table adopted packed
    index.build(jobs=1)
    # New names (ids appended after every sorted one), a name that moves to being defined,
    # a file that defines nothing any more, and a file that was not there.
    index.update("json/decoder.py", "def aaa_first():\n    return zzz_last() + JSONDecoder()\n")
    index.update("email/utils.py", "")
    index.update("new/zzz.py", "def zzz_last():\n    return aaa_first()\n")
    entries = index.entries()
    graph = graph_from_ids(entries)
    assert graph is not None and "zzz_last" in graph.names and "aaa_first" in graph.names
    assert_same(graph, from_strings(entries))


def test_entries_without_one_shared_table_are_left_to_strings(tree: Path) -> None:
    made = FileEntry(
        "a.py", "python", 1, 0, "x", 1, (Definition("f", "function", 0, 0, 0, 1, "", ""),),
        (Reference("g", "call", 0, 0),),
    )  # fmt: skip
    assert graph_from_ids({"a.py": made}) is None  # hand-made: no ids at all
    one = WorkspaceIndex(tree / "json", IndexSettings(), cache_path=None)
    other = WorkspaceIndex(tree / "email", IndexSettings(), cache_path=None)
    one.build(jobs=1)
    other.build(jobs=1)
    mixed = {**one.entries(), **{f"z/{p}": e for p, e in other.entries().items()}}
    assert graph_from_ids(mixed) is None  # two tables: ids mean different names
    assert_same(reference_graph(mixed), from_strings(mixed))


def test_a_builder_that_rebuilds_its_graph_from_ids_renders_what_strings_render(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = WorkspaceIndex(tree, IndexSettings(), cache_path=None)
    index.build(jobs=1)
    focus = {"focus": ["json/decoder.py"], "instruction": "scanstring"}

    def render() -> object:
        return SnapshotBuilder(index, ContextSettings(), state_dir=None).build(
            budget=40_000, **focus
        )

    used: list[bool] = []
    real = idgraph.graph_from_ids
    monkeypatch.setattr(idgraph, "graph_from_ids", lambda e: used.append(True) or real(e))
    monkeypatch.setattr(idgraph, "MIN_FILES", 0)
    by_ids = render()
    monkeypatch.setattr(idgraph, "MIN_FILES", 1 << 30)
    by_strings = render()
    assert used == [True]
    assert snapshot.reference_graph is idgraph.reference_graph
    assert (by_ids.prefix, by_ids.tail) == (by_strings.prefix, by_strings.tail)  # type: ignore[attr-defined]


@pytest.mark.parametrize("mentioned", [frozenset(), frozenset({"loads", "Message", "run"})])
def test_the_walk_made_with_numpy_on_real_code_is_the_walk(
    tree: Path, mentioned: frozenset[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastrank, "MIN_EDGES", 0)  # the subset has fewer edges than that
    index = WorkspaceIndex(tree, IndexSettings(), cache_path=None)
    index.build(jobs=1)
    graph = reference_graph(index.entries())
    direct = fastrank.graph_arrays(graph, mentioned)
    assert direct is not None and direct.slots > 300 and len(direct.src) > 1000
    assert_same_arrays(direct, fastrank.Arrays(fastrank._np(), Walk(graph, mentioned)))
    assert pagerank(graph, mentioned=mentioned) == pagerank(
        graph, mentioned=mentioned, walk=Walk(graph, mentioned)
    )


@pytest.mark.parametrize("warm", [False, True])
@pytest.mark.usefixtures("ranks_from_ids")
def test_the_stable_ranking_from_ids_is_pageranks_bit_for_bit(
    tree: Path, tmp_path: Path, warm: bool
) -> None:
    cache = tmp_path / "cache" / "index.sqlite"
    index = WorkspaceIndex(tree, IndexSettings(), cache_path=cache)
    index.build(jobs=1)  # a cold build: the names are strings already
    if warm:  # a warm start: the table is the cache's packed bytes until something unpacks it
        index = WorkspaceIndex(tree, IndexSettings(), cache_path=cache)
        index.build(jobs=1)
        table = next(iter(index.entries().values())).definitions.symbols.table  # type: ignore[attr-defined]
        assert table.places()[1] is not None
    entries = index.entries()
    from_ids = idgraph.stable_ranks(entries)
    assert from_ids is not None
    expected = pagerank(reference_graph(entries))
    assert list(from_ids) == list(expected)
    assert [r.hex() for r in from_ids.values()] == [r.hex() for r in expected.values()]
    assert len(set(expected.values())) > 50


@pytest.mark.usefixtures("ranks_from_ids")
def test_a_builder_without_a_graph_ranks_from_ids_and_renders_the_same(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = WorkspaceIndex(tree, IndexSettings(), cache_path=None)
    index.build(jobs=1)
    with_graph = SnapshotBuilder(index, ContextSettings(), state_dir=None)
    with_graph._graph = with_graph._graph_now(index.entries())  # ranks on the graph it has
    expected = with_graph.build(budget=6000)

    def refuse(entries: object) -> None:
        raise AssertionError("the stable ranking built the graph")

    monkeypatch.setattr(snapshot, "reference_graph", refuse)
    builder = SnapshotBuilder(index, ContextSettings(), state_dir=None)
    got = builder.build(budget=6000)
    assert builder._graph is None
    assert (got.prefix, got.tail) == (expected.prefix, expected.tail)
    assert got.manifest.to_json() == expected.manifest.to_json()


@pytest.mark.usefixtures("ranks_from_ids")
def test_an_extension_built_before_walk_runs_ranks_by_the_graph(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = WorkspaceIndex(tree, IndexSettings(), cache_path=None)
    index.build(jobs=1)
    real = fastrank._kernel()
    assert idgraph.stable_ranks(index.entries()) is not None

    class Older:  # packed_name_tests without ``used``, no count_starts, no walk_runs
        def packed_name_tests(self, *args: object) -> None:
            if len(args) > 4:
                raise TypeError("packed_name_tests() takes at most 4 arguments")
            real.packed_name_tests(*args)

        def __getattr__(self, name: str) -> object:
            if name in ("count_starts", "walk_runs"):
                raise AttributeError(name)
            return getattr(real, name)

    monkeypatch.setattr(fastrank, "_kernel_module", Older())
    assert idgraph.stable_ranks(index.entries()) is None  # the builder then ranks the graph
    builder = SnapshotBuilder(index, ContextSettings(), state_dir=None)
    assert builder.build(budget=6000).prefix
