"""Benchmark the snapshot on the running interpreter's standard library; prints figures.

    python bench/bench_snapshot.py [--root DIR] [--budgets 65536,262144,1000000]

Render: a fresh SnapshotBuilder (cold render cache, no persisted prefix) building a snapshot with
one focus file; the index is built beforehand (cached on disk) and not part of the figure. Also
the same render on a builder whose reference graph and ranks already exist (the server's steady
state when a new budget or a rebuild is needed).
Update: after a one-line edit to a non-focus file shown in full in the prefix (through
``index.update``, as an editor buffer), the time of the next ``build`` on the warm builder, and
the share of the prefix's tokens that stayed byte-identical. Targets: 64k <= 0.3 s, 1M <= 2 s,
update <= 15 ms, prefix unchanged >= 95%.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

from lsp_agent.config import ContextSettings, IndexSettings
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


def edit_one_line(text: str) -> str:
    lines = text.splitlines(keepends=True)
    middle = len(lines) // 2
    for i in list(range(middle, len(lines))) + list(range(middle)):
        if lines[i].strip():
            lines[i] = lines[i].rstrip("\n") + "  # edited\n"
            break
    return "".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    default_root = sysconfig.get_paths()["stdlib"]
    parser.add_argument("--root", default=default_root)
    parser.add_argument("--budgets", default="65536,262144,1000000")
    parser.add_argument("--repeat", type=int, default=5, help="updates measured per budget")
    args = parser.parse_args()
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
    ranked = SnapshotBuilder(index, ContextSettings(), state_dir=None)
    ranked.build(budget=1000, focus=focus)  # graph and ranks computed; almost nothing rendered
    for budget in (int(b) for b in args.budgets.split(",")):
        t0 = time.perf_counter()
        ranked.build(budget=budget, focus=focus)
        warm = time.perf_counter() - t0
        builder = SnapshotBuilder(index, ContextSettings(), state_dir=None)
        t0 = time.perf_counter()
        snap = builder.build(budget=budget, focus=focus)
        render = time.perf_counter() - t0
        tiers: dict[str, int] = {}
        for entry in snap.manifest.files:
            if entry.section == "prefix":
                tiers[entry.tier] = tiers.get(entry.tier, 0) + 1
        total = count_tokens(snap.prefix) + count_tokens(snap.tail)
        print(
            f"\nbudget {budget:>9,}: render {render:.3f} s cold (graph, ranks, tiers, counts);"
            f" {warm:.3f} s with the graph already ranked\n"
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
        timings: list[float] = []
        shares: list[float] = []
        for victim in victims[: args.repeat]:
            before = builder.build(budget=budget, focus=focus)
            original = index.text(victim) or ""
            index.update(victim, edit_one_line(original))
            t0 = time.perf_counter()
            after = builder.build(budget=budget, focus=focus)
            timings.append(time.perf_counter() - t0)
            shares.append(common_prefix_share(before.prefix, after.prefix))
            assert victim in after.tail, "the edit should show in the tail"
            index.close_buffer(victim)
            builder.build(budget=budget, focus=focus)
        if timings:
            print(
                f"  update after a one-line edit: median {statistics.median(timings) * 1000:.1f} ms"
                f", max {max(timings) * 1000:.1f} ms over {len(timings)} files;"
                f" prefix unchanged {min(shares) * 100:.1f}% (worst)"
            )
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"\npeak RSS: {peak_kb / 1024:.0f} MB (index {stats.files} files included)")


if __name__ == "__main__":
    main()
