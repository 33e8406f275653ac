"""Batch throughput: N one-file tasks against the scripted model at a fixed latency per request,
`lsp-agent refactor --jobs 1` against `--jobs 16`. Prints wall times and the ratio.

    .venv/bin/python bench/bench_batch.py [--files 100] [--latency-ms 200] [--jobs 1 16]

Each task makes three requests (researcher, coder, reviewer), so one task takes at least
3 x latency; the model client's concurrency is raised to the largest --jobs so that the jobs,
not the client's request limit, are what is measured. The CLI runs as a real subprocess.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.batch.support import BatchModel  # noqa: E402
from tests.support.scripted_model import ScriptedModel  # noqa: E402


def make_workspace(root: Path, files: int) -> None:
    for i in range(files):
        package = root / f"pkg{i // 10}"
        package.mkdir(parents=True, exist_ok=True)
        # Distinct names: no references between files, so --split cluster keeps one per task.
        (package / f"mod{i}.py").write_text(f"def compute_{i}(x):\n    return x + {i}\n")
    (root / ".lsp-agent.toml").write_text("[model]\nmax_retries = 0\n")


def run(root: Path, url: str, jobs: int, concurrency: int, cache: Path) -> tuple[float, int]:
    env = dict(
        os.environ,
        LSP_AGENT_BASE_URL=url,
        LSP_AGENT_CONCURRENCY=str(concurrency),
        LSP_AGENT_CACHE_DIR=str(cache),
        PYTHONPATH=str(REPO_ROOT),
    )
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "lsp_agent", "refactor", "Add a header", "--jobs", str(jobs)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"--jobs {jobs} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, proc.stdout.count("+++ b/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        make_workspace(root, args.files)
        floor = 3 * args.latency_ms / 1000
        print(
            f"{args.files} files, one task each, 3 requests per task at {args.latency_ms} ms "
            f"(>= {floor:.2f} s per task); client concurrency {max(args.jobs)}"
        )
        walls: dict[int, float] = {}
        with ScriptedModel(hook=BatchModel(root), latency_ms=args.latency_ms) as model:
            for jobs in args.jobs:
                model.clear_requests()
                # A fresh cache each time: both runs index cold and build the prefix once.
                wall, diffs = run(root, model.url, jobs, max(args.jobs), Path(tmp) / f"c{jobs}")
                walls[jobs] = wall
                ideal = args.files * floor / jobs
                print(
                    f"--jobs {jobs:>3}: {wall:7.2f} s wall, {len(model.requests)} requests, "
                    f"{diffs} files in the diff, max {model.max_overlap()} requests at once "
                    f"(latency-bound ideal {ideal:.1f} s)"
                )
        low, high = min(walls), max(walls)
        if low != high:
            print(f"speed-up --jobs {high} vs --jobs {low}: {walls[low] / walls[high]:.1f}x")


if __name__ == "__main__":
    main()
