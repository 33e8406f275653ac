"""Benchmark the snapshot on the running interpreter's standard library; prints figures.

    python bench/bench_snapshot.py [--root DIR] [--budgets 65536,262144,1000000]

Render: a fresh SnapshotBuilder (cold render cache, no persisted prefix) building a snapshot with
one focus file; the index is built beforehand (cached on disk) and not part of the figure; the
median of --cold runs (each on a new builder) is the figure. Also the same render on a builder
whose reference graph and ranks already exist (the server's steady state when a new budget or a
rebuild is needed), and a fresh builder that finds its prefix persisted in state_dir (a restarted
server, the next CLI run). A full garbage collection (the index holds ~0.5M objects: ~0.1 s)
landing in a timed build is reported next to the figure.
Update: after a one-line edit to a non-focus file shown in full in the prefix (through
``index.update``, as an editor buffer), the time of the next ``build`` on the warm builder, and
the share of the prefix's tokens that stayed byte-identical; then the same for an edit adding a
call (a reference-graph change). Targets: 64k <= 0.3 s, 1M <= 2 s,
update <= 15 ms, prefix unchanged >= 95%.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import resource
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

from lsp_agent.config import ContextSettings, IndexSettings
from lsp_agent.context.model import Snapshot
from lsp_agent.context.render import FULL
from lsp_agent.context.snapshot import SnapshotBuilder
from lsp_agent.context.tokens import count_tokens
from lsp_agent.index.workspace import WorkspaceIndex


def common_prefix_share(old: str, new: str) -> float:
    if old == new:
        return 1.0
    n = 0
    limit = min(len(old), len(new))
    while n < limit and old[n] == new[n]:
        n += 1
    return count_tokens(old[:n]) / max(count_tokens(old), 1)


def add_a_call(text: str) -> str:
    """A new reference to names other files define (json's), no new definition: the kind of
    edit typing in a function body makes, which changes the reference graph."""
    return text + "\ndumps(loads('[1]'))\n"


def edit_one_line(text: str) -> str:
    lines = text.splitlines(keepends=True)
    middle = len(lines) // 2
    for i in list(range(middle, len(lines))) + list(range(middle)):
        if lines[i].strip():
            lines[i] = lines[i].rstrip("\n") + "  # edited\n"
            break
    return "".join(lines)


class FullCollections:
    """Counts the garbage collector's full (generation 2) passes and their time."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.count += 1
            self.seconds += time.perf_counter() - self._started

    def since(self, mark: tuple[int, float]) -> str:
        count, seconds = self.count - mark[0], self.seconds - mark[1]
        return f" [{count} full GC, {seconds * 1000:.0f} ms]" if count else ""

    def mark(self) -> tuple[int, float]:
        return self.count, self.seconds


def numpy_status() -> str:
    started = time.perf_counter()
    try:
        numpy = importlib.import_module("numpy")
    except ImportError:
        return "numpy not installed: PageRank iterates in plain Python"
    took = time.perf_counter() - started
    return (
        f"numpy {numpy.__version__} (PageRank accelerated; import {took * 1000:.0f} ms, paid once"
        " per process by the first large ranking, not included below)"
    )


def timed_build(
    builder: SnapshotBuilder, collections: FullCollections, budget: int, focus: list[str]
) -> tuple[Snapshot, float, str]:
    mark = collections.mark()
    started = time.perf_counter()
    snap = builder.build(budget=budget, focus=focus)
    return snap, time.perf_counter() - started, collections.since(mark)


def main() -> None:
    parser = argparse.ArgumentParser()
    default_root = sysconfig.get_paths()["stdlib"]
    parser.add_argument("--root", default=default_root)
    parser.add_argument("--budgets", default="65536,262144,1000000")
    parser.add_argument("--repeat", type=int, default=5, help="updates measured per budget")
    parser.add_argument("--cold", type=int, default=3, help="cold renders per budget (median)")
    args = parser.parse_args()
    print(numpy_status())
    os.environ.setdefault("LSP_AGENT_CACHE_DIR", str(Path(tempfile.gettempdir()) / "lsp-bench"))

    root = Path(args.root)
    settings = IndexSettings(ignore=("site-packages/", "__pycache__/"))
    started = time.perf_counter()
    index = WorkspaceIndex(root, settings)
    stats = index.build()
    entries = index.entries()
    print(f"corpus: {root} ({len(entries)} files)")
    print(f"index build (disk cache may be warm): {time.perf_counter() - started:.2f} s")
    count_tokens("warm up the tokenizer")

    focus = ["os.py"] if "os.py" in entries else [next(iter(entries))]
    collections = FullCollections()
    ranked = SnapshotBuilder(index, ContextSettings(), state_dir=None)
    ranked.build(budget=1000, focus=focus)  # graph and ranks computed; almost nothing rendered
    state_root = Path(tempfile.mkdtemp(prefix="bench-snapshot-"))
    for budget in (int(b) for b in args.budgets.split(",")):
        _, warm, warm_gc = timed_build(ranked, collections, budget=budget, focus=focus)
        colds: list[tuple[float, str]] = []
        for _ in range(max(args.cold, 1)):
            builder = SnapshotBuilder(index, ContextSettings(), state_dir=None)
            snap, render, render_gc = timed_build(builder, collections, budget=budget, focus=focus)
            colds.append((render, render_gc))
        state_dir = state_root / str(budget)
        SnapshotBuilder(index, ContextSettings(), state_dir=state_dir).build(
            budget=budget, focus=focus
        )  # persists the prefix
        restarted = SnapshotBuilder(index, ContextSettings(), state_dir=state_dir)
        reused, resumed, resumed_gc = timed_build(
            restarted, collections, budget=budget, focus=focus
        )
        assert not reused.manifest.rebuilt
        tiers: dict[str, int] = {}
        for entry in snap.manifest.files:
            if entry.section == "prefix":
                tiers[entry.tier] = tiers.get(entry.tier, 0) + 1
        total = count_tokens(snap.prefix) + count_tokens(snap.tail)
        median = statistics.median(t for t, _ in colds)
        runs = ", ".join(f"{t:.3f}{g}" for t, g in colds)
        print(
            f"\nbudget {budget:>9,}: render {median:.3f} s cold, median of {len(colds)} ({runs});"
            f" {warm:.3f} s{warm_gc} with the graph already ranked;"
            f" {resumed:.3f} s{resumed_gc} on a fresh builder reusing the persisted prefix\n"
            f"  prefix {snap.manifest.prefix_tokens:,} + tail {snap.manifest.tail_tokens:,}"
            f" tokens (recount {total:,}); prefix tiers {tiers}"
        )
        # Warm state for the update: one build after the prefix exists.
        builder.build(budget=budget, focus=focus)
        victims = [
            e.path
            for e in snap.manifest.files
            if e.section == "prefix" and e.tier == FULL and e.path not in focus and e.rank > 0
        ]
        for label, editor in (
            ("a one-line edit", edit_one_line),
            ("an edit adding a call (graph patched)", add_a_call),
        ):
            timings: list[float] = []
            shares: list[float] = []
            update_gc = collections.mark()
            for victim in victims[: args.repeat]:
                before = builder.build(budget=budget, focus=focus)
                original = index.text(victim) or ""
                index.update(victim, editor(original))
                after, took, _ = timed_build(builder, collections, budget=budget, focus=focus)
                timings.append(took)
                shares.append(common_prefix_share(before.prefix, after.prefix))
                assert victim in after.tail, "the edit should show in the tail"
                index.close_buffer(victim)
                builder.build(budget=budget, focus=focus)
            if timings:
                print(
                    f"  update after {label}: median {statistics.median(timings) * 1000:.1f} ms"
                    f", max {max(timings) * 1000:.1f} ms over {len(timings)} files;"
                    f" prefix unchanged {min(shares) * 100:.1f}% (worst)"
                    f"{collections.since(update_gc)}"
                )
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"\npeak RSS: {peak_kb / 1024:.0f} MB (index {stats.files} files included)")


if __name__ == "__main__":
    main()
