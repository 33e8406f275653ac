"""`lspAgent/tasks` against a journal of 1,000 tasks: listing from columns vs loading every row.

A journal is filled with 1,000 finished tasks whose results carry what real ones carry (the
original and new text of each changed file, its diff and its text edits; ``--file-kb`` per
file, 2 files per task). Measured in one run, side by side:

- ``rows``: the old listing, ``TaskJournal.list(limit=200)`` (every column, result blobs
  parsed) then ``task_summary`` per task;
- ``columns``: ``TaskJournal.summaries(limit=200)`` (the small columns only), every row
  decoded, and with one row changed since the last listing (the rest reused);
- ``server``: the real server over stdio answering ``lspAgent/tasks`` on that journal, while it
  is unchanged and while another process (a batch run) writes to it before every request.

Prints p50/p99/max per way. Target: server p99 under 5 ms.

    .venv/bin/python bench/bench_journal.py [--tasks 1000] [--file-kb 8] [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lsp_agent.config import workspace_cache_dir  # noqa: E402
from lsp_agent.tasks.journal import TaskJournal  # noqa: E402
from lsp_agent.tasks.model import Task, TaskState, task_summary  # noqa: E402


def fill(journal: TaskJournal, tasks: int, file_kb: int) -> None:
    body = ("x = compute(value, other) + 1\n" * (file_kb * 1024 // 30))[: file_kb * 1024]
    for i in range(tasks):
        task = Task.new({"instruction": f"task {i}", "files": [f"pkg/m{i}.py"]}, title=f"t{i}")
        task.state = TaskState.SUCCEEDED
        task.created_at = time.time() - (tasks - i)  # recent: retention keeps 90 days
        changes = [
            {
                "path": f"pkg/m{i}_{j}.py",
                "original_sha256": "0" * 64,
                "original_text": body,
                "new_text": body + "y = 2\n",
                "diff": body.replace("x", "+x"),
                "edits": [{"start_line": n, "new_text": "y"} for n in range(50)],
            }
            for j in range(2)
        ]
        task.result = {"state": "succeeded", "title": task.title, "changes": changes}
        journal.record(task)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def describe(name: str, seconds: list[float]) -> str:
    ms = [v * 1000 for v in seconds]
    return (
        f"{name:<8} p50 {percentile(ms, 0.5):7.2f} ms  p99 {percentile(ms, 0.99):7.2f} ms  "
        f"max {max(ms):7.2f} ms  ({len(ms)} requests)"
    )


def timed(fn, requests: int) -> list[float]:
    samples = []
    for _ in range(requests):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


class RawClient:
    """A bare JSON-RPC client over the server's stdio: the time measured is the server's answer
    as bytes on the pipe, not a Python client's parsing of a 200-task reply. ``cwd``: the
    checkout to run (``-m`` puts the working directory first on sys.path, before PYTHONPATH)."""

    def __init__(self, root: Path, env: dict[str, str], cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lsp_agent", "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
        )
        self.ids = 0
        self.root = root

    def send(self, message: dict) -> None:
        body = json.dumps(message).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def read(self) -> dict:
        assert self.proc.stdout is not None
        length = 0
        while (line := self.proc.stdout.readline().strip()) != b"":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if not length:
            raise SystemExit(f"the server closed its output (exit {self.proc.poll()})")
        return json.loads(self.proc.stdout.read(length))

    def request(self, method: str, params: Any) -> Any:
        self.ids += 1
        self.send({"jsonrpc": "2.0", "id": self.ids, "method": method, "params": params})
        while True:
            message = self.read()
            if "method" in message:  # the server's own requests: answer them empty
                if "id" in message:
                    self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
                continue
            if message.get("id") == self.ids:
                if "error" in message:
                    raise SystemExit(f"{method}: {message['error']}")
                return message.get("result")

    def __enter__(self) -> RawClient:
        uri = self.root.as_uri()
        self.request("initialize", {"processId": None, "rootUri": uri, "capabilities": {}})
        self.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        return self

    def __exit__(self, *exc: object) -> None:
        self.request("shutdown", None)
        self.send({"jsonrpc": "2.0", "method": "exit"})
        self.proc.wait(10)


def server_samples(
    root: Path, env: dict[str, str], requests: int, journal: TaskJournal
) -> tuple[list[float], list[float]]:
    """(unchanged journal, journal written by another process before every request)."""
    with RawClient(root, env) as client:
        time.sleep(3)  # past indexing and the worker-module preload
        for _ in range(5):  # warm: the first listing opens the journal's pages
            client.request("lspAgent/tasks", {})
        quiet, changing = [], []
        running = Task.new({"instruction": "a batch task", "files": ["a.py"]}, title="batch")
        running.state = TaskState.RUNNING
        for i in range(requests * 2):
            if i % 2:  # a batch run's progress lands in the shared journal
                running.progress = i % 100
                journal.record(running)
            t0 = time.perf_counter()
            reply = client.request("lspAgent/tasks", {})
            (changing if i % 2 else quiet).append(time.perf_counter() - t0)
            assert len(reply["tasks"]) == 200, len(reply["tasks"])
        return quiet, changing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--file-kb", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as tmp_name:
        tmp = Path(tmp_name)
        root = tmp / "ws"
        root.mkdir()
        (root / "a.py").write_text("def a():\n    return 1\n")
        env = {
            **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
            "LSP_AGENT_CACHE_DIR": str(tmp / "cache"),
            "XDG_CONFIG_HOME": str(tmp / "config"),
        }
        os.environ["LSP_AGENT_CACHE_DIR"] = env["LSP_AGENT_CACHE_DIR"]
        path = workspace_cache_dir(root.resolve()) / "tasks.sqlite"
        with TaskJournal(path) as journal:
            fill(journal, args.tasks, args.file_kb)
            size = path.stat().st_size / 1e6
            rows = timed(lambda: [task_summary(t) for t in journal.list(limit=200)], args.requests)

            def uncached() -> list[dict]:
                journal._listed = None  # measure the query, not the unchanged-journal cache
                journal._decoded = {}  # and every row decoded
                return [r.summary for r in journal.summaries(limit=200)]

            def one_changed() -> list[dict]:
                journal._listed = None  # as after a write: one row differs from the last listing
                latest = next(iter(journal._decoded))
                journal._decoded.pop(latest)
                return [r.summary for r in journal.summaries(limit=200)]

            columns = timed(uncached, args.requests)
            changed = timed(one_changed, args.requests)
            quiet, changing = server_samples(root, env, args.requests, journal)
    print(f"journal: {args.tasks} tasks, 2 files x {args.file_kb} KB each, {size:.1f} MB on disk")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load} (other processes share them)")
    print(describe("rows", rows))
    print(describe("columns", columns) + " every row decoded")
    print(describe("columns", changed) + " one row decoded, the rest as last listed")
    print(describe("server", quiet) + " journal unchanged between polls")
    print(describe("server", changing) + " journal written before each poll")
    p99 = percentile([v * 1000 for v in quiet + changing], 0.99)
    print(f"target server p99 < 5 ms: {'met' if p99 < 5 else 'NOT met'} ({p99:.2f} ms)")


if __name__ == "__main__":
    main()
