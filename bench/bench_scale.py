"""Scale figures (issue 16) on a large tree (the Linux kernel) and on the stdlib; prints figures.

    python bench/bench_scale.py [--root DIR ...] [--budget 1000000] [--changes 20]

Per root, with a fresh cache directory (LSP_AGENT_CACHE_DIR) so the first run is cold:
- cold index: ``lsp-agent index --no-ignore ROOT`` in a new process (writes the cache);
- warm start: the same command again, a fresh process loading everything from the cache;
- snapshot: ``lsp-agent snapshot --budget B --manifest --no-ignore`` twice (the first renders
  the prefix and persists it, the second reuses it), warm index included, as a user runs it.
Each process is timed by wall clock and its memory sampled every 0.5 s: PSS from
/proc/PID/smaps_rollup summed over the process and all its descendants (the parse pool), the
peak reported. Then, in this process: the 1M render on a fresh builder (cold render cache) and on
a builder reusing the persisted prefix, one-file change latency (``index.update`` of a file in
the prefix plus the next ``build``: p50/p95), and the manifest figures: files per tier, tokens
per tier, files whose content is byte-identical to another's, the first 20 entries.
The 1-minute load average is printed before and after: other work on the machine shows there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from lsp_agent.config import ContextSettings, IndexSettings
from lsp_agent.context.snapshot import SnapshotBuilder
from lsp_agent.index.workspace import WorkspaceIndex

LSP_AGENT = [sys.executable, "-m", "lsp_agent"]


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak PSS MB of the process tree, stdout)."""
    peak = 0
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, sum(pss_kib(p) for p in descendants(proc.pid)))
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{argv} exited {proc.returncode}: {err.decode()[-2000:]}")
    return wall, peak / 1024, out.decode()


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def source_mb(index: WorkspaceIndex) -> float:
    return sum(e.size for e in index.entries().values()) / 1e6


def measure(root: Path, budget: int, changes: int) -> None:
    cache = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    env = dict(os.environ, LSP_AGENT_CACHE_DIR=str(cache))
    print(f"\n== {root} ({load()})")
    wall, peak, out = run_measured([*LSP_AGENT, "index", "--no-ignore", "--json", str(root)], env)
    stats = json.loads(out)
    print(f"cold index: {wall:.1f} s, peak PSS {peak:,.0f} MB; {json.dumps(stats)[:400]}")
    wall, peak, _ = run_measured([*LSP_AGENT, "index", "--no-ignore", "--json", str(root)], env)
    print(f"warm start (fresh process, cache): {wall:.2f} s, peak PSS {peak:,.0f} MB")
    snap = [*LSP_AGENT, "snapshot", "--no-ignore", "--budget", str(budget), "--manifest"]
    for label in ("prefix rendered", "prefix reused"):
        wall, peak, _ = run_measured([*snap, str(root)], env)
        print(f"snapshot CLI, {label}: {wall:.1f} s, peak PSS {peak:,.0f} MB (warm index included)")

    os.environ["LSP_AGENT_CACHE_DIR"] = str(cache)
    index = WorkspaceIndex(root, IndexSettings(use_gitignore=False))
    started = time.perf_counter()
    index.build()
    entries = index.entries()
    print(
        f"in process: {len(entries):,} files, {source_mb(index):,.0f} MB of source,"
        f" loaded in {time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    builder = SnapshotBuilder(index, ContextSettings(), state_dir=None)
    result = builder.build(budget=budget)
    cold = time.perf_counter() - started
    state = cache / "state"
    SnapshotBuilder(index, ContextSettings(), state_dir=state).build(budget=budget)
    started = time.perf_counter()
    SnapshotBuilder(index, ContextSettings(), state_dir=state).build(budget=budget)
    reused = time.perf_counter() - started
    print(f"render {budget:,}: {cold:.1f} s cold (ranking included), {reused:.2f} s prefix reused")

    rows = [e for e in result.manifest.files if e.section == "prefix"]
    tiers: Counter[str] = Counter(e.tier for e in rows)
    tokens: Counter[str] = Counter()
    for e in rows:
        tokens[e.tier] += e.tokens
    print(f"prefix {result.manifest.prefix_tokens:,} tokens; files per tier {dict(tiers)}")
    print(f"tokens per tier {dict(tokens)}")
    by_hash: dict[str, list[str]] = {}
    for path, entry in entries.items():
        by_hash.setdefault(entry.sha256, []).append(path)
    copies = sum(len(p) - 1 for p in by_hash.values() if len(p) > 1)
    shown = {e.path: e.tier for e in rows if e.tier in ("full", "signatures")}
    shown_copies = sum(
        max(sum(1 for p in paths if p in shown) - 1, 0) for paths in by_hash.values()
    )
    print(
        f"duplicate content: {copies:,} files are byte-identical copies of another;"
        f" {shown_copies} extra copies shown in full or as signatures"
    )
    print("first 20 entries:")
    for e in [e for e in rows if e.rank > 0][:20]:
        print(f"  {e.rank:>3} {e.tier:<10} {e.tokens:>7,} {e.path}")

    victims = [e.path for e in rows if e.tier == "full" and e.rank > 0][:changes]
    timings = []
    for victim in victims:
        text = index.text(victim) or ""
        started = time.perf_counter()
        index.update(victim, text + "\n/* edited */\n")
        builder.build(budget=budget)
        timings.append(time.perf_counter() - started)
        index.close_buffer(victim)
        builder.build(budget=budget)
    if timings:
        timings.sort()
        p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
        print(
            f"one-file change (update + build): p50 {statistics.median(timings) * 1000:.0f} ms,"
            f" p95 {p95 * 1000:.0f} ms over {len(timings)} files ({load()})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", action="append", help="default: /work/kernel/linux-source-6.1")
    parser.add_argument("--stdlib", action="store_true", help="also the stdlib")
    parser.add_argument("--budget", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()
    roots = [Path(r) for r in args.root or ["/work/kernel/linux-source-6.1"]]
    if args.stdlib:
        roots.append(Path(sysconfig.get_paths()["stdlib"]))
    for root in roots:
        measure(root, args.budget, args.changes)


if __name__ == "__main__":
    main()
