"""The server's memory over many tasks: RSS before and after N tasks (default 200), baseline vs
this checkout, side by side in one run.

Each tree runs the real server (``python -m lsp_agent serve``, PYTHONPATH = that tree) over
stdio against the scripted model (tests/support). The workspace is a copy of the interpreter's
standard library .py files (so each task's snapshot manifest is the size a real project gives)
plus one small file per task; every task renames a function in its own file, is applied through
``workspace/applyEdit``, and is journaled. RSS is the server process's own ``VmRSS`` (where the
task records and manifests live), read from /proc after the index is ready, after the first
``WARM`` tasks (which build the snapshot prefix and ranking state once) and after the last task;
the growth per task is counted from the warm reading. ``lspAgent/tasks`` is asked once at the
end.

    nice -n 10 .venv/bin/python bench/bench_server_memory.py [--baseline d79f470] [--tasks 200]

The baseline runs from a temporary git worktree of --baseline. Memory figures on a shared
machine are steadier than timings, but the allocator's high-water mark depends on timing:
compare the growth column, and run it twice when the numbers are close.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from bench_server import copy_stdlib  # noqa: E402  (bench/ is sys.path[0] when run as a script)

from tests.server.lsp_helpers import apply_text_edits, start_server, stop_server  # noqa: E402
from tests.server.task_helpers import APPROVE, edit_rules, edits_for  # noqa: E402
from tests.support.scripted_model import ScriptedModel  # noqa: E402

IN_FLIGHT = 4  # runTask commands outstanding at once (the server runs `jobs` of them)
STEP = 50  # tasks between the readings of the series
WARM = 10  # tasks before the "warm" reading; growth per task is measured after them
PATIENCE_S = 600.0  # a hang guard for one wait (indexing ~2,000 files on a loaded machine)


async def until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


def names(count: int) -> list[str]:
    return [f"m{i:03d}" for i in range(count)]


def make_workspace(root: Path, count: int) -> int:
    files = copy_stdlib(root)
    for name in names(count):
        (root / f"{name}.py").write_text(f"def {name}_value(x):\n    return x + 1\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return files + count


def plain(value: Any) -> Any:
    """pygls hands custom-method answers back as namedtuples: to JSON-able dicts and lists."""
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


async def measure(
    tree: Path, root: Path, cache: Path, model_url: str, count: int, *, save: bool
) -> dict:
    env = {
        "LSP_AGENT_CACHE_DIR": str(cache),
        "XDG_CONFIG_HOME": str(cache / "config"),
        "LSP_AGENT_BASE_URL": model_url,
        "LSP_AGENT_MODEL": "scripted-model",
        "LSP_AGENT_API_KEY": "test",
    }
    sut = await start_server(root, env=env, tree=tree)
    try:
        started = time.monotonic()
        await until(lambda: "end" in sut.progress_kinds("lsp-agent/index"), "the index")
        indexed_s = time.monotonic() - started
        pid = sut.client._server.pid  # pygls keeps the subprocess there
        before = rss_kib(pid)
        ids: list[str] = []
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(name: str) -> None:
            async with gate:
                result: Any = await sut.run_task(f"{name}.py", instruction=f"rename {name}_value")
                task_id = result["taskId"]
                ids.append(task_id)
                # The task's progress ends when it is finished and applied (or not): no polling.
                token = f"lsp-agent/{task_id}"
                await until(lambda: "end" in sut.progress_kinds(token), f"{task_id} to end")
                if save:  # as an editor that saves: the watcher sees it, the next prefix differs
                    path = root / f"{name}.py"
                    for edit in edits_for(sut, f"{name}.py"):
                        path.write_text(apply_text_edits(path.read_text(), edit.edits))

        started = time.monotonic()
        everything = names(count)
        await asyncio.gather(*(one(name) for name in everything[:WARM]))
        warm = rss_kib(pid)  # the first tasks build the snapshot prefix and ranking state once
        series = [warm]  # RSS after every STEP tasks past the warm ones: linear or a plateau
        rest = everything[WARM:]
        for at in range(0, len(rest), STEP):
            await asyncio.gather(*(one(name) for name in rest[at : at + STEP]))
            series.append(rss_kib(pid))
        tasks_s = time.monotonic() - started
        listing = {t["id"]: t["state"] for t in await sut.tasks()}
        states: dict[str, int] = {}
        for task_id in ids:
            state = listing.get(task_id, "not listed")
            states[state] = states.get(state, 0) + 1
        listed = len(listing)
        after = rss_kib(pid)
        # How many tasks' snapshot manifests the server still holds (lspAgent/context {taskId}
        # answers with the manifest's "files" only while it does), and one manifest's size.
        held, size = 0, 0
        for task_id in ids:
            answer = plain(await sut.raw_request("lspAgent/context", {"taskId": task_id}))
            if "files" in answer:
                held, size = held + 1, len(json.dumps(answer))
        return {
            "before": before,
            "warm": warm,
            "series": series,
            "held": held,
            "size": size,
            "after": after,
            "states": states,
            "indexed_s": indexed_s,
            "tasks_s": tasks_s,
            "listed": listed,
            "edits": len(sut.edits),
        }
    finally:
        await stop_server(sut)


def row(label: str, m: dict, count: int) -> str:
    growth = m["after"] - m["warm"]
    states = ", ".join(f"{k} {v}" for k, v in sorted(m["states"].items()))
    mib = [m[k] / 1024 for k in ("before", "warm", "after")] + [growth / 1024]
    return (
        f"{label:<22} "
        + " ".join(f"{v:>9.1f}" for v in mib)
        + f" {growth / max(1, count - WARM):>9.1f}   {m['tasks_s']:>6.1f} s   {states}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="d79f470", help="commit to compare against")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument(
        "--no-save",
        action="store_true",
        help="leave applied edits in the client only (the index, and so the prefix, never change)",
    )
    args = parser.parse_args()
    rules = [rule for name in names(args.tasks) for rule in edit_rules(name)] + [APPROVE]
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        base = Path(tmp)
        baseline = base / "baseline"
        subprocess.run(
            ["git", "-C", str(HERE), "worktree", "add", "-q", "--detach", str(baseline),
             args.baseline],
            check=True,
        )  # fmt: skip
        try:
            results = {}
            for label, tree in ((f"baseline {args.baseline}", baseline), ("this checkout", HERE)):
                root = base / f"ws-{len(results)}"
                files = make_workspace(root, args.tasks)
                with ScriptedModel(rules=rules) as model:
                    results[label] = asyncio.run(
                        measure(
                            tree,
                            root,
                            base / f"cache-{len(results)}",
                            model.url,
                            args.tasks,
                            save=not args.no_save,
                        )
                    )
        finally:
            subprocess.run(
                ["git", "-C", str(HERE), "worktree", "remove", "--force", str(baseline)],
                check=False,
            )
    saved = "saved to disk after each task" if not args.no_save else "kept in the client only"
    print(
        f"{args.tasks} tasks through the real server over stdio, workspace of {files:,} files, "
        f"edits {saved}"
    )
    print(
        f"RSS of the server process (MiB): after indexing, after the first {WARM} tasks, after "
        f"all {args.tasks}; growth and KiB per task from the {WARM}th to the last"
    )
    heads = ("indexed", "warm", "after", "growth", "KiB/task")
    print(f"{'server':<22} " + " ".join(f"{h:>9}" for h in heads) + "   tasks     states")
    for label, m in results.items():
        print(row(label, m, args.tasks))
    for label, m in results.items():
        steps = " ".join(f"{v / 1024:.1f}" for v in m["series"])
        print(f"{label}: RSS MiB after {WARM} tasks, then every {STEP}: {steps}")
        print(
            f"{label}: manifests still held after {args.tasks} tasks: {m['held']} "
            f"(one is {m['size']:,} bytes as JSON)"
        )
    for label, m in results.items():
        print(
            f"{label}: index ready in {m['indexed_s']:.1f} s; {m['edits']} applyEdit requests; "
            f"lspAgent/tasks lists {m['listed']}"
        )


if __name__ == "__main__":
    main()
