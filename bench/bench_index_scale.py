"""Index memory and warm start at scale (issue 16), this checkout against a baseline checkout.

    python bench/bench_index_scale.py --baseline DIR [--root DIR ...] [--stdlib] [--floor]
                                      [--render BUDGET] [--warm N] [--rounds N]

DIR is another checkout of the project (``git worktree add --detach /tmp/base COMMIT``); each
command runs with PYTHONPATH set to one checkout, in a fresh process, with its own fresh cache
directory, so both see the same machine in the same run. Per root and checkout:

- cold index: ``lsp-agent index --no-ignore --json ROOT`` (writes the cache): wall time and
  peak PSS summed over the process and its descendants (the pool), sampled every 0.5 s
  (bench_scale.run_measured), and MB of peak PSS per MB of source indexed;
- warm start: the same command again, best of N (process start, imports, discovery, cache);
- server (``--render B``): a process that loads the index from the cache and renders a
  B-token snapshot (what the language server holds after indexing), its peak PSS;
- floor (``--floor``): bench_index.py's single-core parse + query loop (queries compiled once,
  bytes in memory) over the same files, and cold wall time / floor. The floor is measured
  before and after each round of cold runs (``--rounds N``), and each round is divided by the
  mean of the two: this machine's speed drifts within minutes.

The machine is shared (2 cores, other work running): the load average is printed with each
figure, and timings are noisy; run it with ``nice``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import load, run_measured

HERE = Path(__file__).resolve().parent.parent

_SERVER = """
import json, sys, time
from pathlib import Path
from lsp_agent.config import ContextSettings, IndexSettings
from lsp_agent.context.snapshot import SnapshotBuilder
from lsp_agent.index.workspace import WorkspaceIndex
started = time.perf_counter()
index = WorkspaceIndex(Path(sys.argv[1]), IndexSettings(use_gitignore=False))
index.build()
loaded = time.perf_counter() - started
snapshot = SnapshotBuilder(index, ContextSettings(), state_dir=None).build(budget=int(sys.argv[2]))
print(json.dumps({"load_s": loaded, "render_s": time.perf_counter() - started - loaded,
                  "prefix_tokens": snapshot.manifest.prefix_tokens}))
"""


def _env(code: Path, cache: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(code), LSP_AGENT_CACHE_DIR=str(cache))


def measure(code: Path, root: Path, warm_runs: int, render: int) -> dict[str, float]:
    cache = Path(tempfile.mkdtemp(prefix="bench-index-scale-"))
    env = _env(code, cache)
    argv = [sys.executable, "-m", "lsp_agent", "index", "--no-ignore", "--json", str(root)]
    out: dict[str, float] = {}
    out["cold_s"], out["cold_mb"], stdout = run_measured(argv, env)
    stats = json.loads(stdout)
    out["files"] = stats["files"]
    out["definitions"], out["references"] = stats["definitions"], stats["references"]
    print(f"  {code}: cold {out['cold_s']:.1f} s, {out['cold_mb']:,.0f} MB ({load()})", flush=True)
    out["warm_s"] = out["warm_mb"] = 0.0
    if warm_runs:
        warm = [run_measured(argv, env)[:2] for _ in range(warm_runs)]
        out["warm_s"], out["warm_mb"] = min(warm)
        print(
            f"  {code}: warm {out['warm_s']:.2f} s, {out['warm_mb']:,.0f} MB ({load()})", flush=True
        )
    if render:
        server = [sys.executable, "-c", _SERVER, str(root), str(render)]
        _wall, out["server_mb"], stdout = run_measured(server, env)
        out.update(json.loads(stdout))
        print(f"  {code}: server {out['server_mb']:,.0f} MB ({load()})", flush=True)
    shutil.rmtree(cache, ignore_errors=True)  # a kernel's is ~1 GB
    return out


def floor(root: Path) -> dict[str, float]:
    script = HERE / "bench" / "bench_index.py"
    done = subprocess.run(
        [sys.executable, str(script), "--phase", "floor", str(root), "no-ignore"],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=str(HERE)),
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def source_mb(root: Path) -> float:
    from lsp_agent.config import IndexSettings
    from lsp_agent.index.discovery import IgnoreRules, discover

    settings = IndexSettings(use_gitignore=False)
    found = discover(root, IgnoreRules.for_settings(root, settings), settings.max_file_bytes)
    return sum(f.size for f in found.files) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="baseline checkout")
    parser.add_argument("--root", action="append", type=Path, default=[])
    parser.add_argument("--stdlib", action="store_true", help="also the stdlib")
    parser.add_argument("--floor", action="store_true", help="measure the parse+query floor")
    parser.add_argument("--render", type=int, default=0, help="server phase budget (0: skip)")
    parser.add_argument("--warm", type=int, default=2, help="warm starts per checkout (best)")
    parser.add_argument("--rounds", type=int, default=1, help="cold runs per checkout")
    args = parser.parse_args()
    roots = [r.resolve() for r in args.root]
    # ``python -m`` puts the working directory first on sys.path: run from one that holds no
    # checkout, so PYTHONPATH alone decides which code each process runs.
    os.chdir(tempfile.mkdtemp(prefix="bench-index-scale-cwd-"))
    if args.stdlib:
        # A copy without site-packages and __pycache__: the library itself, the same files the
        # floor parses (bench_index's stdlib settings ignore both; --no-ignore would not).
        stdlib = Path(tempfile.mkdtemp(prefix="bench-index-scale-stdlib-")) / "stdlib"
        skip = shutil.ignore_patterns("site-packages", "__pycache__", "*.pyc")
        shutil.copytree(sysconfig.get_paths()["stdlib"], stdlib, ignore=skip, symlinks=True)
        roots.append(stdlib)
    for root in roots:
        mb = source_mb(root)
        print(f"\n== {root}: {mb:,.1f} MB of source ({load()})", flush=True)
        # This machine's speed drifts by a third within minutes: each round's cold runs are
        # divided by the mean of the floors measured just before and just after them.
        floors = [floor(root)["seconds"]] if args.floor else []
        rounds = []
        for number in range(args.rounds):
            warm, render = (args.warm, args.render) if number == 0 else (0, 0)
            rounds.append(
                (
                    measure(args.baseline.resolve(), root, warm, render),
                    measure(HERE, root, warm, render),
                )
            )
            if args.floor:
                floors.append(floor(root)["seconds"])
                print(f"  floor {floors[-2]:.1f} s, then {floors[-1]:.1f} s ({load()})", flush=True)
        base, mine = rounds[0]
        print(
            f"files {mine['files']:,.0f}, definitions {mine['definitions']:,.0f},"
            f" references {mine['references']:,.0f}"
        )
        rows = [("cold index, s", "cold_s"), ("cold peak PSS, MB", "cold_mb")]
        rows += [("warm start, s", "warm_s"), ("warm peak PSS, MB", "warm_mb")]
        if args.render:
            rows += [("server load+render peak PSS, MB", "server_mb")]
        print(f"{'':34} {'baseline':>10} {'this':>10} {'ratio':>7}")
        for label, key in rows:
            b, m = base[key], mine[key]
            print(f"{label:34} {b:>10,.2f} {m:>10,.2f} {m / b if b else 0:>6.2f}x")
        print(
            f"{'cold peak PSS per MB of source':34} {base['cold_mb'] / mb:>10.2f}"
            f" {mine['cold_mb'] / mb:>10.2f}"
        )
        if args.render:
            print(
                f"{'server peak PSS per MB of source':34} {base['server_mb'] / mb:>10.2f}"
                f" {mine['server_mb'] / mb:>10.2f}"
            )
        if args.floor:
            for number, (b, m) in enumerate(rounds):
                flo = (floors[number] + floors[number + 1]) / 2
                print(
                    f"round {number + 1}: floor (parse+query, 1 core) {flo:.1f} s; cold"
                    f" {b['cold_s']:.1f} / {m['cold_s']:.1f} s; cold / floor: baseline"
                    f" {b['cold_s'] / flo:.2f}x, this {m['cold_s'] / flo:.2f}x (target <= 0.6x)"
                )
        print(f"({load()})")


if __name__ == "__main__":
    main()
