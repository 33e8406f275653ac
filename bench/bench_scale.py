"""Scale figures (issue 16) on a large tree (the Linux kernel) and on the stdlib; prints figures.

    python bench/bench_scale.py [--root DIR ...] [--stdlib] [--budget 1000000] [--changes 20]
                                [--baseline COMMIT] [--cache DIR] [--snapshot-only] [--rounds N]

Per root, with a fresh cache directory (LSP_AGENT_CACHE_DIR) so the first run is cold, unless
``--cache`` names one that already holds the index (the kernel's cold index takes many minutes):
- cold index: ``lsp-agent index --no-ignore ROOT`` in a new process (writes the cache);
- warm start: the same command again, a fresh process loading everything from the cache;
- snapshot: ``lsp-agent snapshot --budget B --manifest --no-ignore`` twice (the first renders
  the prefix and persists it, the second reuses it), warm index included, as a user runs it.
Each process is timed by wall clock and its memory sampled every 0.5 s: PSS from
/proc/PID/smaps_rollup summed over the process and all its descendants (the parse pool), the
peak reported. ``--snapshot-only`` skips these CLI runs.

Then, in a child process per code version (this checkout, and ``--baseline COMMIT`` exported
from git when given, so both run on the same machine in the same minutes), after a warm index
load and ``gc.freeze()`` as the server does once it has indexed (handlers/indexing.py):
- render: the 1M snapshot on a fresh builder without a state dir (ranking included), on a
  fresh builder whose state dir holds the ranking but no prefix for this budget (another
  budget was built there first, and the graph kept as the server keeps it), on a fresh
  builder reusing the persisted prefix, and on one reusing it with a focus
  (kernel/sched/core.c), as a restarted server's first task asks; then a focused build on a
  builder of its own state dir with the ranking but no graph (a first ``lsp-agent snapshot
  --focus`` with no index run or server before it);
- one-file change: ``index.update`` of a file shown in full plus the next ``build`` on a
  long-lived builder, as the server does per edit (p50/p95), then the buffer closed again; and
  whether a fresh builder on the same files and state dir then builds the same snapshot;
- the manifest: files per tier, tokens per tier, byte-identical copies, the first 20 entries.
With ``--rounds N`` each version's child runs N times, the versions alternating which goes first
(ABBA), and each figure is the median (the wall times of every round are printed too).
The 1-minute load average is printed before and after: other work on the machine shows there.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

LSP_AGENT = [sys.executable, "-m", "lsp_agent"]
REPO = Path(__file__).resolve().parent.parent


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


def cli_figures(root: Path, budget: int, cache: Path) -> None:
    env = dict(os.environ, LSP_AGENT_CACHE_DIR=str(cache))
    wall, peak, out = run_measured([*LSP_AGENT, "index", "--no-ignore", "--json", str(root)], env)
    stats = json.loads(out)
    print(f"index (cold unless --cache): {wall:.1f} s, peak PSS {peak:,.0f} MB; {out[:300]}")
    wall, peak, _ = run_measured([*LSP_AGENT, "index", "--no-ignore", "--json", str(root)], env)
    print(f"warm start (fresh process, cache): {wall:.2f} s, peak PSS {peak:,.0f} MB")
    del stats
    snap = [*LSP_AGENT, "snapshot", "--no-ignore", "--budget", str(budget), "--manifest"]
    for label in ("prefix rendered", "prefix reused"):
        wall, peak, _ = run_measured([*snap, str(root)], env)
        print(f"snapshot CLI, {label}: {wall:.1f} s, peak PSS {peak:,.0f} MB (warm index included)")


# -- in a child process, with the code version under test on sys.path -------------------------


FOCUS = "kernel/sched/core.c"  # on another tree: its first file


def in_process(root: Path, budget: int, changes: int, state_root: Path) -> dict[str, object]:
    from lsp_agent.config import ContextSettings, IndexSettings
    from lsp_agent.context.snapshot import SnapshotBuilder
    from lsp_agent.index.workspace import WorkspaceIndex

    out: dict[str, object] = {}
    index = WorkspaceIndex(root, IndexSettings(use_gitignore=False))
    started = time.perf_counter()
    index.build()
    out["index load s"] = time.perf_counter() - started
    gc.freeze()  # what the server does once the index is built (handlers/indexing.py)
    entries = index.entries()
    out["files"] = len(entries)

    def timed(label: str, builder: SnapshotBuilder, focus: list[str] | None = None) -> object:
        """Wall and CPU seconds of one build: on a shared machine the CPU time of this
        process says what the code costs, the wall time what a user waited."""
        started, cpu = time.perf_counter(), time.process_time()
        # focus only when given: older builders take no None for it (the baseline's does not)
        result = builder.build(budget=budget, **({"focus": focus} if focus else {}))
        out[f"{label} wall s"] = time.perf_counter() - started
        out[f"{label} cpu s"] = time.process_time() - cpu
        return result

    result = timed(
        "render cold, ranking included,", SnapshotBuilder(index, ContextSettings(), state_dir=None)
    )
    state = state_root / "state"
    first = SnapshotBuilder(index, ContextSettings(), state_dir=state)
    first.build(budget=budget // 2)
    # What the server does next (handlers/indexing.py), and lsp-agent index: the graph made
    # and kept for the first focused request. Code that has no rank_ahead saved the graph
    # in the build above.
    getattr(first, "rank_ahead", lambda: None)()
    del first
    timed(
        "render cold, ranking persisted,",
        SnapshotBuilder(index, ContextSettings(), state_dir=state),
    )
    timed("render reused", SnapshotBuilder(index, ContextSettings(), state_dir=state))
    # What a restarted server's first task asks: the reused prefix and a tail focused on a
    # file, whose neighbourhood needs the reference graph (persisted, when the code does).
    focus = [FOCUS] if FOCUS in entries else [next(iter(entries))]
    timed(
        "render reused, focused,",
        SnapshotBuilder(index, ContextSettings(), state_dir=state),
        focus,
    )

    bare = state_root / "bare"
    SnapshotBuilder(index, ContextSettings(), state_dir=bare).build(budget=budget // 2)
    (bare / "graph.bin").unlink(missing_ok=True)  # the baseline saved one in that build
    timed(
        "render cold, focused, no graph kept,",
        SnapshotBuilder(index, ContextSettings(), state_dir=bare),
        focus,
    )

    # The same files must render the same snapshot, byte for byte, in every code version.
    rendered = "\0".join(
        [result.prefix, result.tail, json.dumps(result.manifest.to_json(), sort_keys=True)]  # type: ignore[attr-defined]
    )
    out["snapshot sha256 (prefix, tail, manifest)"] = hashlib.sha256(rendered.encode()).hexdigest()
    rows = [e for e in result.manifest.files if e.section == "prefix"]  # type: ignore[attr-defined]
    tiers: Counter[str] = Counter(e.tier for e in rows)
    tokens: Counter[str] = Counter()
    for e in rows:
        tokens[e.tier] += e.tokens
    out["prefix tokens"] = result.manifest.prefix_tokens  # type: ignore[attr-defined]
    out["files per tier"] = dict(tiers)
    out["tokens per tier"] = dict(tokens)
    out["files with definitions shown (full + signatures)"] = tiers["full"] + tiers["signatures"]
    by_hash: dict[str, list[str]] = {}
    for path, entry in entries.items():
        by_hash.setdefault(entry.sha256, []).append(path)
    shown = {e.path for e in rows if e.tier in ("full", "signatures")}
    out["byte-identical copies"] = sum(len(p) - 1 for p in by_hash.values() if len(p) > 1)
    out["extra copies shown in full or as signatures"] = sum(
        max(sum(1 for p in paths if p in shown) - 1, 0) for paths in by_hash.values()
    )
    out["first 20"] = [
        f"{e.rank:>3} {e.tier:<10} {e.tokens:>7,} {e.path}" for e in rows if e.rank > 0
    ][:20]

    # The server's flow: one long-lived builder; each edit updates the index, then builds.
    victims = [e.path for e in rows if e.tier == "full" and e.rank > 0][:changes]
    # The analysis above is the bench's, not the server's (which keeps no snapshot): its 78k
    # manifest rows and lists by hash would be walked by every full collection in the edits.
    del result, rows, by_hash, shown, entries
    gc.collect()
    builder = SnapshotBuilder(index, ContextSettings(), state_dir=state)
    builder.build(budget=budget)
    timings: list[float] = []
    cpu_times: list[float] = []
    for victim in victims:
        text = index.text(victim) or ""
        started, cpu = time.perf_counter(), time.process_time()
        index.update(victim, text + "\n/* edited */\n")
        builder.build(budget=budget)
        timings.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu)
        index.close_buffer(victim)
        builder.build(budget=budget)
    for label, values in (("wall", timings), ("cpu", cpu_times)):
        if values:
            values.sort()
            p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
            out[f"one-file change {label} p50 ms"] = statistics.median(values) * 1000
            out[f"one-file change {label} p95 ms"] = p95 * 1000
    out["changes timed"] = len(timings)
    # Incremental == from scratch: the last edit kept open, a fresh builder on the same files.
    if victims:
        index.update(victims[0], (index.text(victims[0]) or "") + "\nint edited_here(void);\n")
        incremental = builder.build(budget=budget, focus=[victims[-1]])
        fresh = SnapshotBuilder(index, ContextSettings(), state_dir=state).build(
            budget=budget, focus=[victims[-1]]
        )
        out["incremental build == fresh build"] = (
            incremental.prefix == fresh.prefix
            and incremental.tail == fresh.tail
            and incremental.manifest.to_json() == fresh.manifest.to_json()
        )
        index.close_buffer(victims[0])
    # What the server does at shutdown (handlers/lifecycle.py): the edits above left the
    # cache's heads snapshot stale, and the next start (the other code version's child)
    # would read every row instead (~15 s on the kernel, not ~2 s).
    write_heads = getattr(index, "write_heads", None)
    if write_heads is not None:
        write_heads()
    return out


def export(commit: str, git: Path) -> Path:
    """The tree of ``commit`` (git archive) in a temporary folder, its C extensions built in
    place: without them the baseline would run its pure-Python fallbacks, not what it shipped."""
    target = Path(tempfile.mkdtemp(prefix=f"bench-scale-{commit[:10]}-"))
    archive = subprocess.run(
        ["git", "-C", str(git), "archive", commit], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    build = [sys.executable, "-c", "from setuptools import setup; setup()", "build_ext"]
    done = subprocess.run([*build, "--inplace"], cwd=target, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"building {commit}'s extensions failed:\n{done.stderr[-3000:]}")
    built = sorted(p.name for p in (target / "lsp_agent").rglob("*.so"))
    print(f"  (baseline {commit[:10]}: extensions {', '.join(built) or 'none'})")
    return target


def child(code: Path, root: Path, budget: int, changes: int, cache: Path) -> dict[str, object]:
    env = dict(os.environ, LSP_AGENT_CACHE_DIR=str(cache), PYTHONPATH=str(code))
    argv = [sys.executable, __file__, "--child", str(root), "--budget", str(budget)]
    argv += ["--changes", str(changes)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    if done.returncode != 0:
        raise SystemExit(f"bench child for {code} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def report(root: Path, figures: dict[str, dict[str, object]]) -> None:
    labels = list(figures)
    keys = list(dict.fromkeys(k for f in figures.values() for k in f))
    print(f"in process on {root}: " + " | ".join(labels))
    for key in keys:
        values = [figures[label].get(key) for label in labels]
        if key == "first 20":
            for label, value in zip(labels, values, strict=True):
                print(f"  first 20 entries ({label}):")
                for line in value or []:  # type: ignore[attr-defined]
                    print(f"    {line}")
            continue
        shown = [f"{v:,.2f}" if isinstance(v, float) else str(v) for v in values]
        ratio = ""
        if len(values) == 2 and all(isinstance(v, (int, float)) for v in values) and values[0]:
            ratio = f"  (x{values[1] / values[0]:.3f})"  # type: ignore[operator]
        print(f"  {key}: " + " | ".join(shown) + ratio)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", action="append", help="default: /work/kernel/linux-source-6.1")
    parser.add_argument("--stdlib", action="store_true", help="also the stdlib")
    parser.add_argument("--budget", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--baseline", help="a commit to measure in the same run, side by side")
    parser.add_argument("--baseline-cache", type=Path, help="its cache dir (default: --cache)")
    parser.add_argument("--cache", type=Path, help="a cache dir that already holds the index")
    parser.add_argument("--snapshot-only", action="store_true", help="skip the CLI runs")
    parser.add_argument(
        "--rounds", type=int, default=1, help="children per version, in ABBA order (medians)"
    )
    parser.add_argument("--git", type=Path, default=REPO, help="the repository of --baseline")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        state_root = Path(tempfile.mkdtemp(prefix="bench-scale-state-"))
        figures = in_process(args.child, args.budget, args.changes, state_root)
        print(json.dumps(figures))
        return
    roots = [Path(r) for r in args.root or ["/work/kernel/linux-source-6.1"]]
    if args.stdlib:  # a copy without site-packages and __pycache__: the library itself
        stdlib = Path(tempfile.mkdtemp(prefix="bench-scale-stdlib-")) / "stdlib"
        skip = shutil.ignore_patterns("site-packages", "__pycache__", "*.pyc")
        shutil.copytree(sysconfig.get_paths()["stdlib"], stdlib, ignore=skip, symlinks=True)
        roots.append(stdlib)
    for root in roots:
        cache = args.cache or Path(tempfile.mkdtemp(prefix="bench-scale-"))
        print(f"\n== {root} ({load()})")
        if not args.snapshot_only:
            cli_figures(root, args.budget, cache)
        versions = [("this checkout", REPO, cache)]
        if args.baseline:
            code = export(args.baseline, args.git)
            versions.insert(
                0, (f"baseline {args.baseline[:10]}", code, args.baseline_cache or cache)
            )
        runs: dict[str, list[dict[str, object]]] = {label: [] for label, _, _ in versions}
        for round_ in range(args.rounds):
            # ABBA: the second child of a pair ran measurably slower (its index load 1.4x in
            # two runs), so each version runs first as often as second.
            for label, code, version_cache in versions[:: -1 if round_ % 2 else 1]:
                runs[label].append(child(code, root, args.budget, args.changes, version_cache))
                print(f"  ({label}, round {round_ + 1} done, {load()})")
        report(root, {label: median_figures(found) for label, found in runs.items()})
        print(f"  ({load()})")


def median_figures(runs: list[dict[str, object]]) -> dict[str, object]:
    """Per figure, the median over the rounds (each round's values follow the wall times);
    other values (hashes, tiers, the first entries) from the first round."""
    out: dict[str, object] = {}
    for key, first in runs[0].items():
        values = [run.get(key) for run in runs]
        if len(runs) > 1 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            out[key] = statistics.median(values)  # type: ignore[type-var]
            if "wall" in key:
                out[f"{key} per round"] = " ".join(f"{v:.2f}" for v in values)  # type: ignore[str-format]
        else:
            out[key] = first
    return out


if __name__ == "__main__":
    main()
