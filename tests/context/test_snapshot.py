"""Budgets, tiers, focus and manifest on the fixture workspace with the real index."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lsp_agent.config import ContextSettings, ModelSettings, Settings
from lsp_agent.context.model import Selection
from lsp_agent.context.render import TIER_ORDER
from lsp_agent.context.snapshot import SnapshotBuilder, budget_for
from lsp_agent.context.tokens import count_tokens
from lsp_agent.index.workspace import WorkspaceIndex

Builder = Callable[..., SnapshotBuilder]


@pytest.mark.parametrize("budget", [150, 400, 900, 1500, 3000, 100_000])
def test_budget_is_never_exceeded_by_the_real_count(make_builder: Builder, budget: int) -> None:
    snap = make_builder().build(
        budget=budget,
        focus=["inventory/store.py"],
        instruction="count items per warehouse",
        diagnostics=["inventory/store.py:20: error: missing return"],
    )
    real = count_tokens(snap.prefix) + count_tokens(snap.tail)
    assert real <= budget
    # the manifest's figures are the real counts, not estimates
    assert snap.manifest.prefix_tokens == count_tokens(snap.prefix)
    assert snap.manifest.tail_tokens == count_tokens(snap.tail)


def test_focus_files_are_always_in_full(make_builder: Builder, index: WorkspaceIndex) -> None:
    focus = ["inventory/store.py", "inventory/cli.py"]
    for budget in (700, 1200, 50_000):
        snap = make_builder().build(budget=budget, focus=focus)
        for path in focus:
            text = index.text(path) or ""
            # in full exactly once: in the tail, or in the prefix with a reference in the tail
            assert (snap.prefix + snap.tail).count(text) == 1
            tail_entry = next(
                e for e in snap.manifest.files if e.section == "tail" and e.path == path
            )
            assert tail_entry.tier == "full"
            if text in snap.tail:
                assert tail_entry.reason == "focus file"
            else:
                assert tail_entry.reason == "focus file; in full in the prefix"
                assert f"=== {path} (focus file: shown in full" in snap.tail
        if budget == 50_000:  # most relevant last: the focus files follow their neighbourhood
            assert snap.tail.index("# Focus files") > snap.tail.index("# Related to the focus")


def test_a_focus_file_larger_than_the_budget_is_truncated_with_a_marker(
    make_builder: Builder, index: WorkspaceIndex, workspace
) -> None:
    big = "".join(
        f"def function_number_{i}(value: int) -> int:\n    return value\n" for i in range(400)
    )
    (workspace / "inventory" / "big.py").write_text(big)
    index.refresh(["inventory/big.py"])
    snap = make_builder().build(budget=600, focus=["inventory/big.py"])
    assert count_tokens(snap.prefix) + count_tokens(snap.tail) <= 600
    assert "truncated: first" in snap.tail and "more lines not shown]" in snap.tail
    assert any("truncated" in note for note in snap.manifest.notes)
    focus_entry = next(e for e in snap.manifest.files if e.section == "tail")
    assert "truncated" in focus_entry.reason


def test_tiers_degrade_in_rank_order(make_builder: Builder) -> None:
    seen_tiers = set()
    for budget in (200, 500, 800, 1100, 1600, 4000):
        snap = make_builder().build(budget=budget)
        ranked = sorted(
            (e for e in snap.manifest.files if e.section == "prefix" and e.rank > 0),
            key=lambda e: e.rank,
        )
        tiers = [TIER_ORDER[e.tier] for e in ranked if e.path != ".env"]
        assert tiers == sorted(tiers), (budget, [(e.path, e.tier) for e in ranked])
        seen_tiers.update(e.tier for e in ranked)
    assert {"full", "signatures", "path"} <= seen_tiers


def test_manifest_lists_every_file_once_in_the_prefix_with_reasons(
    make_builder: Builder, index: WorkspaceIndex
) -> None:
    snap = make_builder().build(budget=900, focus=["inventory/report.py"])
    prefix_entries = [e for e in snap.manifest.files if e.section == "prefix"]
    assert sorted(e.path for e in prefix_entries) == sorted(index.entries())
    assert all(e.reason for e in snap.manifest.files)
    assert [e.rank for e in prefix_entries if e.rank] == list(range(1, len(prefix_entries) - 1))
    data = snap.manifest.to_json()
    assert data["prefix_hash"] == snap.prefix_hash
    assert data["total_tokens"] == data["prefix_tokens"] + data["tail_tokens"]


def test_requests_on_one_prefix_share_its_manifest_rows_but_not_the_list(
    make_builder: Builder,
) -> None:
    builder = make_builder()
    first = builder.build(budget=6000, focus=["inventory/report.py"])
    second = builder.build(budget=6000, focus=["inventory/models.py"])
    assert not second.manifest.rebuilt and second.prefix == first.prefix
    head = [e for e in first.manifest.files if e.section == "prefix"]
    assert head == [e for e in second.manifest.files if e.section == "prefix"]
    assert all(a is b for a, b in zip(head, second.manifest.files, strict=False))  # no copies
    first.manifest.files.clear()  # one snapshot's list is its own
    assert builder.build(budget=6000).manifest.files[: len(head)] == head


def test_sensitive_content_never_appears(make_builder: Builder) -> None:
    snap = make_builder().build(
        budget=100_000, focus=[".env"], selection=Selection(".env", 0, 0, 0, 5)
    )
    assert "do-not-send-this-secret" not in snap.prefix + snap.tail
    assert ".env" in snap.prefix  # listed by path
    assert "content withheld" in snap.tail


def test_selection_and_diagnostics_come_last(make_builder: Builder) -> None:
    snap = make_builder().build(
        budget=5000,
        focus=["inventory/store.py"],
        selection=Selection("inventory/store.py", 25, 4, 27, 0),
        diagnostics=["inventory/store.py:27: warning: unused variable"],
    )
    assert snap.tail.rstrip().endswith(
        "    def remove_stock(self, warehouse: Warehouse, item: Item, quantity: int) -> int:\n"
        "        key = (warehouse.code, item.sku)"
    )
    assert "selection, lines 26-27" in snap.tail
    assert snap.tail.index("# Diagnostics") < snap.tail.index("# Selection")
    assert snap.tail.index("# Focus files") < snap.tail.index("# Diagnostics")


def test_focus_and_budget_errors_are_clear(make_builder: Builder) -> None:
    builder = make_builder()
    with pytest.raises(ValueError, match="not in the workspace index"):
        builder.build(budget=1000, focus=["inventory/nope.py"])
    with pytest.raises(ValueError, match="relative to the workspace root"):
        builder.build(budget=1000, focus=["../outside.py"])
    with pytest.raises(ValueError, match="positive"):
        builder.build(budget=0)


def test_budget_presets() -> None:
    """The snapshot budget follows the window of the model's preset (the rule itself is tested
    in tests/agents/test_sizing.py): a bigger window never gives a smaller snapshot."""

    def settings(model: str = "", window: int = 0, budget: int = 0) -> Settings:
        return Settings(
            model=ModelSettings(model=model, context_window=window),
            context=ContextSettings(budget=budget, reserve=16_384),
        )

    goal = [budget_for(settings(), m, kind="goal") for m in ("gpt-4.1", "kimi-k2.6", "deepseek-v4")]
    assert goal == sorted(goal) and len(set(goal)) == 3
    assert budget_for(settings("deepseek-v4-flash"), kind="goal") == goal[2]
    assert budget_for(settings(window=64_000), "deepseek-v4-pro", kind="goal") < 64_000 - 16_384
    assert budget_for(settings(budget=50_000), "kimi-k2.6") == 50_000
