"""Worker benchmarks against the scripted model server (real HTTP, real openai SDK). Prints figures.

    .venv/bin/python bench/bench_worker.py [--tasks 20] [--latency-ms 200] [--files 8]

1. Overhead: a 1-file task (researcher, coder, reviewer: 3 requests) at zero model latency.
2. Parallel coders: an N-file task at the given latency, coders in parallel (client concurrency
   8) against one at a time (concurrency 1); both the coding phase and the whole task.
3. Prefix cache: prompt tokens sent against the tokens the server's simulated prefix cache
   served, over two consecutive tasks with a real snapshot of a slice of the standard library.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lsp_agent.agents.client import OpenAIChatClient  # noqa: E402
from lsp_agent.agents.orchestrator import ProgressEvent, TaskSpec, run_task  # noqa: E402
from lsp_agent.agents.providers import resolve_provider  # noqa: E402
from lsp_agent.config import ContextSettings, ModelSettings, Settings  # noqa: E402
from lsp_agent.index.workspace import WorkspaceIndex  # noqa: E402
from tests.support.scripted_model import ScriptedModel  # noqa: E402


class Snap:
    def __init__(self, prefix: str, tail: str = "", prefix_hash: str = "bench") -> None:
        self.prefix, self.tail, self.prefix_hash = prefix, tail, prefix_hash


def client_for(model: ScriptedModel, concurrency: int = 8) -> OpenAIChatClient:
    settings = Settings(model=ModelSettings(provider="local", base_url=model.url, model="m"))
    return OpenAIChatClient(resolve_provider(settings, env={}), concurrency=concurrency)


def rules_for(paths: list[str], delay_ms: int = 0) -> list[dict[str, Any]]:
    targets = [{"path": p, "instructions": "rename value to result"} for p in paths]
    plan = {"targets": targets, "notes": "bench"}
    rules: list[dict[str, Any]] = [
        {
            "match": {"has_tool": "submit_plan"},
            "reply": {"tool_calls": [{"name": "submit_plan", "arguments": plan}]},
        }
    ]
    for path in paths:
        edit = f"{path}\n<<<<<<< SEARCH\nvalue = 1\n=======\nresult = 1\n>>>>>>> REPLACE\n"
        rules.append({"match": {"contains": f"# Target file: {path}"}, "reply": {"content": edit}})
    review = {"approved": True, "findings": []}
    rules.append(
        {
            "match": {"has_tool": "submit_review"},
            "reply": {"tool_calls": [{"name": "submit_review", "arguments": review}]},
        }
    )
    if delay_ms:
        for rule in rules:
            rule["delay_ms"] = delay_ms
    return rules


def workspace(base: Path, n: int) -> tuple[WorkspaceIndex, list[str]]:
    paths = [f"pkg/mod{i}.py" for i in range(n)]
    for path in paths:
        (base / path).parent.mkdir(parents=True, exist_ok=True)
        (base / path).write_text(
            f'"""Module."""\n\nvalue = 1\n\n\ndef f{path[-4]}():\n    return 0\n'
        )
    index = WorkspaceIndex(base, cache_path=None)
    index.build(jobs=1)
    return index, paths


async def one_task(index, snapshot, client, transcripts: Path, files: list[str] | None = None):
    marks: list[tuple[float, ProgressEvent]] = []
    started = time.perf_counter()
    result = await run_task(
        TaskSpec(instruction="rename value to result", files=files or []),
        index=index,
        snapshot=snapshot,
        client=client,
        settings=Settings(),
        progress=lambda e: marks.append((time.perf_counter(), e)),
        transcript_dir=transcripts,
    )
    total = time.perf_counter() - started
    assert result.state == "succeeded", result.error
    coding = [t for t, e in marks if e.stage == "coding"]
    return result, total, (coding[-1] - coding[0]) if coding else 0.0


async def bench_overhead(base: Path, tasks: int) -> None:
    index, paths = workspace(base / "overhead", 1)
    with ScriptedModel(rules=rules_for(paths)) as model:
        client = client_for(model)
        await one_task(index, Snap("x"), client, base / "t")  # warm up the SDK
        model.clear_requests()
        times = []
        for _ in range(tasks):
            _, total, _ = await one_task(index, Snap("x"), client, base / "t")
            times.append(total)
        server = [r.end - r.start for r in model.requests if r.end is not None]
    per_task = statistics.median(times) * 1000
    in_server = statistics.median(server) * 1000 * 3
    print(
        f"overhead: 1-file task, 3 requests, 0 ms latency: median {per_task:.1f} ms/task "
        f"(p90 {sorted(times)[int(len(times) * 0.9) - 1] * 1000:.1f} ms; "
        f"server time {in_server:.1f} ms; {tasks} tasks)"
    )


async def bench_parallel(base: Path, files: int, latency: int) -> None:
    index, paths = workspace(base / "parallel", files)
    figures = {}
    for label, concurrency in (("parallel", 8), ("one-at-a-time", 1)):
        with ScriptedModel(rules=rules_for(paths, latency)) as model:
            _, total, coding = await one_task(
                index, Snap("x"), client_for(model, concurrency), base / "t"
            )
        figures[label] = (total, coding)
        print(
            f"{files}-file task at {latency} ms, {label:>13}: task {total * 1000:7.0f} ms, "
            f"coding phase {coding * 1000:7.0f} ms"
        )
    (ptotal, pcoding), (stotal, scoding) = figures["parallel"], figures["one-at-a-time"]
    print(
        f"speed-up: coding phase {scoding / pcoding:.1f}x, whole task {stotal / ptotal:.1f}x "
        f"(researcher and reviewer are sequential by nature)"
    )


async def bench_cache(base: Path) -> None:
    from lsp_agent.context.snapshot import SnapshotBuilder

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    root = base / "stdlib-slice"
    for name in ("json", "email", "http", "logging"):
        shutil.copytree(stdlib / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "json" / "tool.py").write_text("value = 1\n" + (root / "json/tool.py").read_text())
    index = WorkspaceIndex(root, cache_path=None)
    index.build(jobs=1)
    builder = SnapshotBuilder(index, ContextSettings(), state_dir=None)
    snapshot = builder.build(budget=60_000, focus=["json/tool.py"])
    with ScriptedModel(rules=rules_for(["json/tool.py"])) as model:
        client = client_for(model)
        for n in (1, 2):
            result, _, _ = await one_task(index, snapshot, client, base / "t", ["json/tool.py"])
            u = result.usage
            print(
                f"prefix cache, task {n}: {u.requests} requests, prompt {u.prompt_tokens} "
                f"tokens, cached {u.cached_tokens} ({u.cache_hit_ratio:.0%}); "
                f"snapshot prefix ~{len(snapshot.prefix) // 4} tokens"
            )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--files", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        import os

        os.environ["LSP_AGENT_CACHE_DIR"] = str(base / "cache")
        await bench_overhead(base, args.tasks)
        await bench_parallel(base, args.files, args.latency_ms)
        await bench_cache(base)


if __name__ == "__main__":
    asyncio.run(main())
