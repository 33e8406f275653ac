"""The rolling prefix: stable across edits and added files, rebuilt when a file goes away or past
the churn threshold, persisted across builders (and so across processes and restarts)."""

from __future__ import annotations

import marshal
from collections.abc import Callable
from pathlib import Path

import pytest

from lsp_agent.config import ContextSettings
from lsp_agent.context import snapshot as snapshot_module
from lsp_agent.context.persist import load_state
from lsp_agent.context.prefix import PrefixState
from lsp_agent.context.snapshot import SnapshotBuilder, prefix_budget_for
from lsp_agent.context.tokens import count_tokens
from lsp_agent.index.workspace import WorkspaceIndex

Builder = Callable[..., SnapshotBuilder]
BUDGET = 4000
FOCUS = ["inventory/report.py"]


def edit(workspace: Path, index: WorkspaceIndex, path: str, old: str, new: str) -> None:
    file = workspace / path
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new, 1))
    index.refresh([path])


def test_an_edit_outside_the_focus_keeps_the_prefix_and_shows_in_the_tail(
    make_builder: Builder, index: WorkspaceIndex, workspace: Path
) -> None:
    builder = make_builder()
    first = builder.build(budget=BUDGET, focus=FOCUS)
    assert first.manifest.rebuilt
    edit(workspace, index, "inventory/store.py", "return left", "return max(left, 0)")
    second = builder.build(budget=BUDGET, focus=FOCUS)
    assert second.prefix == first.prefix and second.prefix_hash == first.prefix_hash
    assert not second.manifest.rebuilt
    assert "=== inventory/store.py (changed) ===" in second.tail
    assert "-        return left\n+        return max(left, 0)\n" in second.tail
    assert second.tail.index("# Changes since") < second.tail.index("# Focus files")
    assert 0 < second.manifest.stale_tokens < 0.1 * second.manifest.prefix_tokens
    assert count_tokens(second.prefix) + count_tokens(second.tail) <= BUDGET
    changed = [e for e in second.manifest.files if e.section == "tail" and "changed" in e.reason]
    assert [e.path for e in changed] == ["inventory/store.py"]


def test_an_open_buffer_edit_counts_like_a_disk_edit(
    make_builder: Builder, index: WorkspaceIndex
) -> None:
    builder = make_builder()
    first = builder.build(budget=BUDGET, focus=FOCUS)
    text = index.text("inventory/models.py") or ""
    index.update("inventory/models.py", text.replace('"piece"', '"unit"'))
    second = builder.build(budget=BUDGET, focus=FOCUS)
    assert second.prefix == first.prefix
    assert '+DEFAULT_UNIT = "unit"' in second.tail
    index.close_buffer("inventory/models.py")
    third = builder.build(budget=BUDGET, focus=FOCUS)
    assert third.prefix == first.prefix and "# Changes since" not in third.tail


def test_passing_the_churn_threshold_rebuilds_the_prefix(
    make_builder: Builder, index: WorkspaceIndex, workspace: Path
) -> None:
    builder = make_builder(churn_threshold=0.10)
    first = builder.build(budget=BUDGET)
    edit(workspace, index, "inventory/store.py", "return left", "return left  # small")
    small = builder.build(budget=BUDGET)
    assert not small.manifest.rebuilt and small.prefix == first.prefix
    rewritten = "".join(
        f"def replacement_number_{i}(argument: int) -> int:\n    return argument * {i}\n"
        for i in range(40)
    )
    (workspace / "inventory" / "cli.py").write_text(rewritten)
    index.refresh(["inventory/cli.py"])
    big = builder.build(budget=BUDGET)
    assert big.manifest.rebuilt
    assert big.prefix != first.prefix
    assert "return left  # small" in big.prefix or "inventory/store.py" in big.prefix
    assert "replacement_number_0" in big.prefix
    assert "# Changes since" not in big.tail and big.manifest.stale_tokens == 0
    again = builder.build(budget=BUDGET)
    assert again.prefix == big.prefix and not again.manifest.rebuilt


def test_a_lower_threshold_rebuilds_on_a_smaller_change(
    make_builder: Builder, index: WorkspaceIndex, workspace: Path
) -> None:
    builder = make_builder(churn_threshold=0.001)
    first = builder.build(budget=BUDGET)
    edit(workspace, index, "inventory/store.py", "return left", "return left  # small")
    assert builder.build(budget=BUDGET).manifest.rebuilt
    assert builder.build(budget=BUDGET).prefix != first.prefix


def test_deleted_files_disappear(
    make_builder: Builder, index: WorkspaceIndex, workspace: Path
) -> None:
    builder = make_builder()
    first = builder.build(budget=BUDGET)
    assert "inventory/cli.py" in first.prefix
    (workspace / "inventory" / "cli.py").unlink()
    index.refresh(["inventory/cli.py"])
    after = builder.build(budget=BUDGET)
    assert after.manifest.rebuilt
    assert "inventory/cli.py" not in after.prefix + after.tail
    assert all(e.path != "inventory/cli.py" for e in after.manifest.files)


def test_an_added_file_keeps_the_prefix_and_shows_whole_in_the_tail(
    make_builder: Builder, index: WorkspaceIndex, workspace: Path, monkeypatch
) -> None:
    builder = make_builder()
    first = builder.build(budget=BUDGET)
    ranked: list[object] = []
    monkeypatch.setattr(builder, "_stable", lambda graph: ranked.append(graph) or {})
    (workspace / "inventory" / "audit.py").write_text("def audit_log() -> None:\n    pass\n")
    index.refresh(["inventory/audit.py"])
    after = builder.build(budget=BUDGET)
    assert not after.manifest.rebuilt and after.prefix == first.prefix
    assert ranked == [], "the stable ranking was recomputed for an added file"
    block = "=== inventory/audit.py (new since the snapshot) ===\ndef audit_log() -> None:\n"
    assert block in after.tail
    (entry,) = [e for e in after.manifest.files if e.path == "inventory/audit.py"]
    assert (entry.section, entry.reason) == ("tail", "added since the prefix was built")
    assert after.manifest.stale_tokens >= entry.tokens > 0
    # Gone again: the file set is the prefix's own, nothing is stale.
    (workspace / "inventory" / "audit.py").unlink()
    index.refresh(["inventory/audit.py"])
    back = builder.build(budget=BUDGET)
    assert not back.manifest.rebuilt and "audit.py" not in back.prefix + back.tail
    # A file of the prefix that goes away does rebuild: the prefix must not show it.
    monkeypatch.undo()
    assert "=== inventory/report.py" in first.prefix
    (workspace / "inventory" / "report.py").unlink()
    index.refresh(["inventory/report.py"])
    gone = builder.build(budget=BUDGET)
    assert gone.manifest.rebuilt and "inventory/report.py" not in gone.prefix + gone.tail


def test_added_files_past_the_churn_threshold_rebuild_the_prefix(
    make_builder: Builder, index: WorkspaceIndex, workspace: Path
) -> None:
    builder = make_builder()
    first = builder.build(budget=BUDGET)
    body = "".join(f"def audit_{n}(x: int) -> int:\n    return x + {n}\n\n" for n in range(60))
    (workspace / "inventory" / "audit.py").write_text(body)
    index.refresh(["inventory/audit.py"])
    after = builder.build(budget=BUDGET)
    assert count_tokens(body) > first.manifest.prefix_tokens * ContextSettings().churn_threshold
    assert after.manifest.rebuilt and "inventory/audit.py" in after.prefix


def test_the_prefix_persists_across_builders(
    index: WorkspaceIndex, workspace: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    first = SnapshotBuilder(index, ContextSettings(), state_dir=state).build(budget=BUDGET)
    assert (state / f"prefix-{prefix_budget_for(BUDGET)}.bin").is_file()
    edit(workspace, index, "inventory/report.py", "total: {total}", "total = {total}")
    # A new index and builder, as after a restart: same bytes, the edit in the tail.
    fresh = WorkspaceIndex(workspace, cache_path=None)
    fresh.build(jobs=1)
    second = SnapshotBuilder(fresh, ContextSettings(), state_dir=state).build(budget=BUDGET)
    assert not second.manifest.rebuilt
    assert second.prefix == first.prefix
    assert '+    return f"total = {total}"' in second.tail
    # another budget has its own prefix
    other = SnapshotBuilder(fresh, ContextSettings(), state_dir=state).build(budget=BUDGET * 2)
    assert other.manifest.rebuilt


def test_a_corrupt_persisted_prefix_is_rebuilt_not_fatal(
    index: WorkspaceIndex, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    first = SnapshotBuilder(index, ContextSettings(), state_dir=state).build(budget=BUDGET)
    path = state / f"prefix-{prefix_budget_for(BUDGET)}.bin"
    # same length: still a well-formed file, but the text no longer matches its hash
    path.write_bytes(path.read_bytes().replace(b"Project overview", b"Tampered overvie"))
    second = SnapshotBuilder(index, ContextSettings(), state_dir=state).build(budget=BUDGET)
    assert second.manifest.rebuilt and second.prefix == first.prefix
    path.write_bytes(path.read_bytes()[:100])  # truncated
    third = SnapshotBuilder(index, ContextSettings(), state_dir=state).build(budget=BUDGET)
    assert third.manifest.rebuilt and third.prefix == first.prefix
    path.write_text("{not marshal")
    fourth = SnapshotBuilder(index, ContextSettings(), state_dir=state).build(budget=BUDGET)
    assert fourth.manifest.rebuilt and fourth.prefix == first.prefix


def test_a_large_focus_cuts_the_prefix_from_its_end_keeping_a_byte_prefix(
    make_builder: Builder, index: WorkspaceIndex, workspace: Path
) -> None:
    builder = make_builder()
    # at 800 tokens the prefix shows neither focus file in full, so the tail must carry both
    stable = builder.build(budget=800)
    focused = builder.build(budget=800, focus=["inventory/store.py", "inventory/report.py"])
    assert stable.prefix.startswith(focused.prefix)
    assert len(focused.prefix) < len(stable.prefix)
    assert any("cut" in note for note in focused.manifest.notes)
    cut = [e for e in focused.manifest.files if e.section == "prefix" and e.tier == "omitted"]
    assert cut and all("cut from this request" in e.reason for e in cut if e.path != ".env")
    assert count_tokens(focused.prefix) + count_tokens(focused.tail) <= 800


def test_budget_holds_with_changes_in_the_tail(
    make_builder: Builder, index: WorkspaceIndex, workspace: Path
) -> None:
    budgets = (120, 300, 600, 900, 1500, 4000)
    builders = {budget: make_builder(churn_threshold=1.0) for budget in budgets}
    for budget, builder in builders.items():
        builder.build(budget=budget)
    edit(workspace, index, "inventory/store.py", "return left", "return left  # one")
    edit(workspace, index, "tests/store_checks.py", '"Apple"', '"Pear"')
    edit(workspace, index, "README.md", "tiny", "small")
    for budget, builder in builders.items():
        snap = builder.build(budget=budget, focus=["inventory/cli.py"], instruction="StockStore")
        assert not snap.manifest.rebuilt
        assert count_tokens(snap.prefix) + count_tokens(snap.tail) <= budget, budget
        assert snap.manifest.tail_tokens == count_tokens(snap.tail)
    roomy = builders[4000].build(budget=4000)
    assert "-A tiny stock-keeping library" in roomy.tail  # the overview's README block
    assert "+A small stock-keeping library" in roomy.tail


def test_an_edit_that_changes_references_patches_the_graph_as_a_fresh_process_would(
    index: WorkspaceIndex, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    focus = ["inventory/models.py"]
    builder = SnapshotBuilder(index, ContextSettings(), state_dir=state)
    builder.build(budget=BUDGET, focus=focus, instruction="label the stock")
    builds: list[int] = []
    real_graph = snapshot_module.reference_graph
    monkeypatch.setattr(
        snapshot_module,
        "reference_graph",
        lambda entries: builds.append(1) or real_graph(entries),
    )
    # cli.py now also calls total_report: a new reference, no new definition
    edit(
        workspace,
        index,
        "inventory/cli.py",
        "print(stock_report(store, warehouse))",
        "print(stock_report(store, warehouse), total_report(store, warehouse))",
    )
    patched = builder.build(budget=BUDGET, focus=focus, instruction="label the stock")
    assert builds == []  # patched, not rebuilt
    assert not patched.manifest.rebuilt and "inventory/cli.py" in patched.tail
    monkeypatch.undo()
    fresh = SnapshotBuilder(index, ContextSettings(), state_dir=state).build(
        budget=BUDGET, focus=focus, instruction="label the stock"
    )
    assert (fresh.prefix, fresh.tail) == (patched.prefix, patched.tail)
    assert fresh.manifest.to_json() == patched.manifest.to_json()
    # a new definition cannot be patched: the graph is rebuilt
    monkeypatch.setattr(
        snapshot_module,
        "reference_graph",
        lambda entries: builds.append(1) or real_graph(entries),
    )
    edit(
        workspace,
        index,
        "inventory/cli.py",
        "def main(",
        "def helper() -> None: ...\n\n\ndef main(",
    )
    builder.build(budget=BUDGET, focus=focus)
    assert builds == [1]


def test_a_focus_file_in_full_in_the_prefix_is_referred_to_not_copied(
    make_builder: Builder, index: WorkspaceIndex, workspace: Path
) -> None:
    builder = make_builder()
    stable = builder.build(budget=4000)
    full = [e.path for e in stable.manifest.files if e.section == "prefix" and e.tier == "full"]
    path = next(p for p in full if p.endswith(".py"))
    focused = builder.build(budget=4000, focus=[path])
    text = index.text(path)
    assert text and focused.prefix.count(text) == 1 and text not in focused.tail
    assert f"=== {path} (focus file: shown in full in the repository map above" in focused.tail
    assert focused.shown_in_full[path] == index.get(path).sha256
    # once the file changes, the prefix copy is stale: the tail carries the current text
    (workspace / path).write_text(text + "\nVALUE = 1\n")
    index.refresh([path])
    changed = builder.build(budget=4000, focus=[path])
    assert (text + "\nVALUE = 1\n") in changed.tail
    assert (
        path not in changed.shown_in_full or changed.shown_in_full[path] == index.get(path).sha256
    )


def test_a_restarted_builder_makes_the_manifest_rows_only_when_they_are_read(
    index: WorkspaceIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One row per workspace file (78k on the kernel, ~0.35 s): a restart's first request
    # does not wait for them; the manifest still lists every file when asked.
    state = tmp_path / "state"
    first = SnapshotBuilder(index, ContextSettings(), state_dir=state).build(
        budget=BUDGET, focus=FOCUS
    )
    expected = first.manifest.to_json()
    made: list[int] = []
    real = PrefixState.manifest_entries

    def counting(self, dropped):  # type: ignore[no-untyped-def]
        made.append(1)
        return real(self, dropped)

    monkeypatch.setattr(PrefixState, "manifest_entries", counting)
    again = SnapshotBuilder(index, ContextSettings(), state_dir=state).build(
        budget=BUDGET, focus=FOCUS
    )
    assert not again.manifest.rebuilt and made == []
    assert again.manifest.to_json()["files"] == expected["files"] and made == [1]
    assert len(again.manifest.files) == len(index.entries()) + sum(
        1 for e in again.manifest.files if e.section == "tail"
    )
    assert made == [1]  # made once


def test_a_restarted_builder_reads_back_every_record_as_it_was_built(
    index: WorkspaceIndex, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    builder = SnapshotBuilder(index, ContextSettings(), state_dir=state)
    builder.build(budget=BUDGET)
    built = builder._states[prefix_budget_for(BUDGET)]
    read = load_state(state, prefix_budget_for(BUDGET))
    assert read is not None and read.files is not built.files
    assert dict(read.files.items()) == dict(built.files.items())  # every field of every file
    assert len(read.files) == len(index.entries()) >= 10
    some = next(iter(index.entries()))
    assert read.files[some] == built.files[some] and some in read.files
    assert read.files.get("no/such/file.py") is None and "no/such/file.py" not in read.files
    assert read.full_paths() == built.full_paths() != []
    assert read.segments == built.segments
    assert read.files.same_paths(index.entries())
    assert read.files.not_in([some, "new.py"]) == ["new.py"]


def test_a_persisted_prefix_with_uneven_columns_is_rebuilt(
    index: WorkspaceIndex, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    first = SnapshotBuilder(index, ContextSettings(), state_dir=state).build(budget=BUDGET)
    path = state / f"prefix-{prefix_budget_for(BUDGET)}.bin"
    data = list(marshal.loads(path.read_bytes()))
    data[-1] = data[-1][:-1]  # one reason short
    path.write_bytes(marshal.dumps(tuple(data)))
    second = SnapshotBuilder(index, ContextSettings(), state_dir=state).build(budget=BUDGET)
    assert second.manifest.rebuilt and second.prefix == first.prefix
    assert "differ in number" in caplog.text
