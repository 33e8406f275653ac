"""The change path (issue 16): a long-lived builder follows the index's change notices and
looks only at the files that changed, builds the reference graph only when a request needs it,
and reads the stable ranking back from its state dir. Whatever it skips, each snapshot equals
the one a fresh builder makes from the same files and state dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lsp_agent.config import ContextSettings
from lsp_agent.context import prefix
from lsp_agent.context.model import Snapshot
from lsp_agent.context.snapshot import SnapshotBuilder
from lsp_agent.context.view import TaskView
from lsp_agent.index.workspace import WorkspaceIndex

BUDGET = 4000


def _same(a: object, b: object) -> None:
    """Same bytes and the same manifest; only whether this build made the prefix may differ
    (the incremental builder rebuilt it, the fresh one read it back)."""
    assert a.prefix == b.prefix  # type: ignore[attr-defined]
    assert a.tail == b.tail  # type: ignore[attr-defined]
    mine, theirs = a.manifest.to_json(), b.manifest.to_json()  # type: ignore[attr-defined]
    mine.pop("rebuilt")
    theirs.pop("rebuilt")
    assert mine == theirs


def test_every_incremental_build_equals_a_fresh_one(
    index: WorkspaceIndex, workspace: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    builder = SnapshotBuilder(index, ContextSettings(), state_dir=state)
    builder.build(budget=BUDGET)
    report = workspace / "inventory" / "report.py"
    models = workspace / "inventory" / "models.py"
    steps = [
        # an open buffer that changes what the file references (patches the graph)
        lambda: index.update("inventory/report.py", report.read_text() + "\nStockStore()\n"),
        # a comment only: same graph, a diff in the tail
        lambda: index.update("inventory/models.py", models.read_text() + "\n# note\n"),
        lambda: index.close_buffer("inventory/report.py"),
        # a disk edit the watcher reports
        lambda: (
            report.write_text(report.read_text().replace("total", "grand_total")),
            index.refresh(["inventory/report.py"]),
        ),
        # a new file: the file set changes, the prefix is rebuilt
        lambda: (
            (workspace / "inventory" / "audit.py").write_text("def audit_store():\n    pass\n"),
            index.refresh(["inventory/audit.py"]),
        ),
        # a file goes away
        lambda: (
            (workspace / "inventory" / "audit.py").unlink(),
            index.refresh(["inventory/audit.py"]),
        ),
        lambda: index.close_buffer("inventory/models.py"),
    ]
    requests = [
        {},
        {"focus": ["inventory/report.py"]},
        {"focus": ["inventory/models.py"], "instruction": "make StockStore thread-safe"},
    ]
    for step in steps:
        step()
        for kwargs in requests:
            incremental = builder.build(budget=BUDGET, **kwargs)  # type: ignore[arg-type]
            fresh = SnapshotBuilder(index, ContextSettings(), state_dir=state).build(
                budget=BUDGET,
                **kwargs,  # type: ignore[arg-type]
            )
            _same(incremental, fresh)
    # A task's view for one build (a pinned version of a file), then the index again.
    view = TaskView(index, {"inventory/models.py": "class StockStore:\n    pass\n"})
    for kwargs in requests:
        in_view = builder.build(budget=BUDGET, view=view, **kwargs)  # type: ignore[arg-type]
        fresh_builder = SnapshotBuilder(index, ContextSettings(), state_dir=state)
        _same(in_view, fresh_builder.build(budget=BUDGET, view=view, **kwargs))  # type: ignore[arg-type]
        again = builder.build(budget=BUDGET, **kwargs)  # type: ignore[arg-type]
        fresh = SnapshotBuilder(index, ContextSettings(), state_dir=state)
        _same(again, fresh.build(budget=BUDGET, **kwargs))  # type: ignore[arg-type]


def test_a_reused_prefix_needs_no_graph_and_an_edit_does_not_build_one(
    index: WorkspaceIndex, workspace: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    SnapshotBuilder(index, ContextSettings(), state_dir=state).build(budget=BUDGET)
    builder = SnapshotBuilder(index, ContextSettings(), state_dir=state)
    assert not builder.build(budget=BUDGET).manifest.rebuilt
    assert builder._graph is None
    report = workspace / "inventory" / "report.py"
    index.update("inventory/report.py", report.read_text() + "\n# edited\n")
    edited = builder.build(budget=BUDGET)
    assert builder._graph is None and not edited.manifest.rebuilt
    assert "+# edited" in edited.tail
    builder.build(budget=BUDGET, focus=["inventory/report.py"])  # a focus needs the graph
    assert builder._graph is not None


def _refuse(*args: object) -> None:
    raise AssertionError("the rule ran again: the reasons were not read back")


def test_the_stable_ranking_is_read_back_for_another_budget(
    index: WorkspaceIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    SnapshotBuilder(index, ContextSettings(), state_dir=state).build(budget=BUDGET)
    assert (state / "ranks.bin").is_file()
    builder = SnapshotBuilder(index, ContextSettings(), state_dir=state)
    other = builder.build(budget=BUDGET * 2)
    assert other.manifest.rebuilt and builder._graph is None  # ranked without a graph
    memory_only = SnapshotBuilder(index, ContextSettings(), state_dir=None).build(budget=BUDGET * 2)
    _same(other, memory_only)

    # why files were ranked down came back with the scores, not from the rule run again
    def why_ranked_down(snapshot: Snapshot) -> dict[str, str]:
        rows = snapshot.manifest.files
        return {e.path: e.reason.rpartition("; ")[2] for e in rows if "ranked down" in e.reason}

    ranked_down = why_ranked_down(other)
    assert any(why == "a test file, ranked down" for why in ranked_down.values())
    monkeypatch.setattr(prefix, "rules", _refuse)
    reread = SnapshotBuilder(index, ContextSettings(), state_dir=state).build(budget=BUDGET * 3)
    assert why_ranked_down(reread) == ranked_down
    (state / "ranks.bin").write_bytes(b"garbage")  # unreadable: ranked again, same result
    again = SnapshotBuilder(index, ContextSettings(), state_dir=tmp_path / "s2")
    _same(again.build(budget=BUDGET * 2), memory_only)


def test_a_dropped_builder_stops_following_the_index(index: WorkspaceIndex) -> None:
    import gc

    notices: list[set[str]] = []
    index.subscribe(notices.append)  # another follower, kept for the index's life
    followers = len(index._subscribers)
    for _ in range(5):  # a goal run builds one per step
        SnapshotBuilder(index, ContextSettings(), state_dir=None).build(budget=BUDGET)
    gc.collect()
    assert len(index._subscribers) == followers
    index.update("inventory/report.py", "def changed():\n    pass\n")
    assert notices == [{"inventory/report.py"}]


def test_a_restarted_builder_reads_the_graph_back_and_follows_edits_from_it(
    index: WorkspaceIndex, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lsp_agent.context import snapshot

    state = tmp_path / "state"
    focused = {"budget": BUDGET, "focus": ["inventory/models.py"]}
    first = SnapshotBuilder(index, ContextSettings(), state_dir=state).build(**focused)
    assert (state / "graph.bin").is_file()

    def without_graph() -> object:
        """What a fresh builder makes of the same files and state, building its own graph."""
        copy = tmp_path / f"copy{len(list(tmp_path.iterdir()))}"
        shutil.copytree(state, copy)
        (copy / "graph.bin").unlink()
        return SnapshotBuilder(index, ContextSettings(), state_dir=copy).build(**focused)

    built = []
    real_graph = snapshot.reference_graph
    monkeypatch.setattr(
        snapshot, "reference_graph", lambda s: built.append(len(s)) or real_graph(s)
    )
    restarted = SnapshotBuilder(index, ContextSettings(), state_dir=state)
    _same(restarted.build(**focused), first)
    assert built == []  # read back, not built
    # An edit that changes only what a file references patches the graph read from disk.
    report = workspace / "inventory" / "report.py"
    index.update("inventory/report.py", report.read_text() + "\nStockStore()\n")
    patched = restarted.build(**focused)
    assert built == []
    reference = without_graph()
    assert built == [len(index.entries())]  # (the reference built its own)
    _same(patched, reference)
    # A new file: the graph is rebuilt, with every file's summary, and saved again.
    (workspace / "inventory" / "audit.py").write_text("def audit_store():\n    pass\n")
    index.refresh(["inventory/audit.py"])
    built.clear()
    rebuilt = restarted.build(**focused)
    assert built == [len(index.entries())]
    _same(rebuilt, without_graph())


def test_an_unreadable_graph_is_built_again(
    index: WorkspaceIndex, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    focused = {"budget": BUDGET, "focus": ["inventory/models.py"]}
    first = SnapshotBuilder(index, ContextSettings(), state_dir=state).build(**focused)
    (state / "graph.bin").write_bytes(b"\x00garbage")
    with caplog.at_level("WARNING"):
        again = SnapshotBuilder(index, ContextSettings(), state_dir=state).build(**focused)
    _same(again, first)
    assert any("reference graph" in r.getMessage() for r in caplog.records)
