"""textDocument/codeAction latency while the server indexes the stdlib and runs 8 tasks.

The real server runs as a subprocess over stdio; the model is the scripted HTTP server with
per-request latency. Two measured phases of 100 requests each (paced, one at a time):

- indexing: right after ``initialized``, while the workspace (a copy of the interpreter's
  standard library .py files, plus 8 small task files) is being indexed in the background;
- tasks: while the 8 tasks are inside the model (they start once the index is ready).

Prints p50/p90/p99/max per phase and overall. Target: p99 <= 50 ms.

    .venv/bin/python bench/bench_server.py [--latency-ms 400] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lsprotocol import types  # noqa: E402

from tests.server.lsp_helpers import ServerUnderTest, start_server, stop_server  # noqa: E402
from tests.server.task_helpers import APPROVE, edit_rules  # noqa: E402
from tests.support import scripted_model  # noqa: E402

TASKS = 8
NAMES = [f"t{i}" for i in range(TASKS)]


def copy_stdlib(dest: Path) -> int:
    """Only the .py files (no site-packages, no caches): ~2,000 files of real Python."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    count = 0
    for src in stdlib.rglob("*.py"):
        rel = src.relative_to(stdlib)
        if "site-packages" in rel.parts or "__pycache__" in rel.parts:
            continue
        target = dest / "stdlib" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        count += 1
    return count


class ModelProcess:
    """The scripted model in its own process, so its JSON parsing does not share the
    benchmark client's GIL and show up as server latency."""

    def __init__(self, tmp: Path, rules: list[dict], latency_ms: int) -> None:
        rules_file, port_file = tmp / "rules.json", tmp / "port"
        rules_file.write_text(json.dumps(rules))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                scripted_model.__file__,
                "--rules",
                str(rules_file),
                "--port-file",
                str(port_file),
                "--latency-ms",
                str(latency_ms),
            ],
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the scripted model did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text().strip()}/v1"

    def __enter__(self) -> ModelProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def describe(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:9s} (no samples)"
    ms = [v * 1000 for v in values]
    return (
        f"{name:9s} n={len(ms):3d}  p50={statistics.median(ms):6.1f} ms  "
        f"p90={percentile(ms, 0.9):6.1f} ms  p99={percentile(ms, 0.99):6.1f} ms  "
        f"max={max(ms):6.1f} ms"
    )


async def code_action(sut: ServerUnderTest, path: str) -> float:
    params = types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=sut.uri(path)),
        range=types.Range(
            start=types.Position(line=0, character=0), end=types.Position(line=1, character=0)
        ),
        context=types.CodeActionContext(
            diagnostics=[
                types.Diagnostic(
                    range=types.Range(
                        start=types.Position(line=0, character=4),
                        end=types.Position(line=0, character=9),
                    ),
                    message="bench diagnostic",
                )
            ]
        ),
    )
    start = time.perf_counter()
    result = await sut.client.text_document_code_action_async(params)
    elapsed = time.perf_counter() - start
    assert result, "no code actions"
    return elapsed


def index_done(sut: ServerUnderTest) -> bool:
    return any(v.kind == "end" for v in sut.client.progress_reports.get("lsp-agent/index", []))


async def run(latency_ms: int, requests: int, pace_s: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp_name:
        tmp = Path(tmp_name)
        root = tmp / "ws"
        files = copy_stdlib(root)
        for name in NAMES:
            (root / f"{name}.py").write_text(f"def {name}_value(x):\n    return x + 1\n")
        rules = [rule for name in NAMES for rule in edit_rules(name)]
        with ModelProcess(tmp, [*rules, APPROVE], latency_ms) as model:
            env = {
                **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
                "LSP_AGENT_CACHE_DIR": str(tmp / "cache"),
                "XDG_CONFIG_HOME": str(tmp / "config"),
                "LSP_AGENT_BASE_URL": model.url,
                "LSP_AGENT_MODEL": "scripted-model",
            }
            t0 = time.perf_counter()
            sut = await start_server(root, env=env, initialization_options={"jobs": TASKS})
            try:
                sut.open("t0.py")
                task_ids = [
                    (await sut.run_task(f"{name}.py", preset="simplify"))["taskId"]
                    for name in NAMES
                ]
                during_index: list[float] = []
                while len(during_index) < requests // 2 and not index_done(sut):
                    during_index.append(await code_action(sut, "t0.py"))
                    await asyncio.sleep(pace_s)
                await sut.wait_for(lambda: index_done(sut), "the index")
                indexed_at = time.perf_counter() - t0
                during_tasks: list[float] = []
                busy = 0
                while len(during_index) + len(during_tasks) < requests:
                    finished = sum(
                        1
                        for tid in task_ids
                        if sut.progress_kinds(f"lsp-agent/{tid}")[-1:] == ["end"]
                    )
                    busy += finished < TASKS
                    during_tasks.append(await code_action(sut, "t0.py"))
                    await asyncio.sleep(pace_s)
                await sut.wait_for(lambda: len(sut.edits) >= TASKS, "8 applied edits")
                done_at = time.perf_counter() - t0
            finally:
                await stop_server(sut)
    print(
        f"workspace: {files} stdlib .py files + {TASKS} task files; model latency {latency_ms} ms"
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load} (other processes share them)")
    print(f"index ready after {indexed_at:.1f} s; {TASKS} tasks applied after {done_at:.1f} s;")
    print(f"{busy} of the task-phase requests ran while tasks were unfinished")
    print(describe("indexing", during_index))
    print(describe("tasks", during_tasks))
    everything = during_index + during_tasks
    print(describe("all", everything))
    p99 = percentile([v * 1000 for v in everything], 0.99)
    print(f"target p99 <= 50 ms: {'met' if p99 <= 50 else 'NOT met'} ({p99:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=400)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pace-ms", type=int, default=20, help="pause between requests")
    args = parser.parse_args()
    asyncio.run(run(args.latency_ms, args.requests, args.pace_ms / 1000))


if __name__ == "__main__":
    main()
