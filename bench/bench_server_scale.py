"""The language server's memory on a large tree (issue 16): index it, render a 1M-token snapshot.

    python bench/bench_server_scale.py --baseline DIR [--root DIR] [--budget 1000000]
                                       [--focus PATH] [--warm]

The real server (``python -m lsp_agent serve`` over stdio, PYTHONPATH set to one checkout:
this one, then DIR, a baseline checkout from ``git worktree add --detach /tmp/base COMMIT``)
opens ROOT (default: the kernel under /work/kernel) with a fresh cache directory, so it indexes
cold, as on a first open. The client sends ``lspAgent/context`` for ``--focus`` at once: the
server answers after its index is ready, with a snapshot of ``--budget`` tokens (a 1M-window
model: ``context_window`` 1.4M, ``context.budget`` B). ``--warm`` then starts a second server on
the same cache (a restart) and asks again.

Per checkout and start: seconds to the reply, the peak PSS of the server and every process it
started (the parse pool), sampled every 0.5 s, and the PSS the server holds 2 s after its reply
(what it keeps while the user works), with MB per MB of source.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index_scale import source_mb
from bench_journal import RawClient
from bench_scale import descendants, load, pss_kib

KERNEL = Path("/work/kernel/linux-source-6.1")


class Server(RawClient):
    """One server over stdio, and a PSS sampler of its process tree."""

    def __init__(self, root: Path, env: dict[str, str], code: Path) -> None:
        super().__init__(root, env, cwd=code)
        self.peak_kib = 0
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak_kib = max(self.peak_kib, self.pss_kib())
            self._done.wait(0.5)

    def pss_kib(self) -> int:
        return sum(pss_kib(pid) for pid in descendants(self.proc.pid))

    def stop(self) -> None:
        self.request("shutdown", None)
        self.send({"jsonrpc": "2.0", "method": "exit"})
        self.proc.wait(60)
        self._done.set()
        self._sampler.join()


def one_start(code: Path, root: Path, cache: Path, focus: str) -> dict[str, float]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
        "PYTHONPATH": str(code),
        "LSP_AGENT_CACHE_DIR": str(cache),
        "XDG_CONFIG_HOME": str(cache / "config"),
        "LSP_AGENT_PROVIDER": "deepseek",
        "LSP_AGENT_MODEL": "deepseek-v4-flash",
        "LSP_AGENT_CONTEXT_WINDOW": "1400000",
        "LSP_AGENT_CONTEXT_BUDGET": str(BUDGET),
    }
    started = time.perf_counter()
    server = Server(root, env, code)
    uri = root.as_uri()
    server.request("initialize", {"processId": os.getpid(), "rootUri": uri, "capabilities": {}})
    server.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    manifest = server.request("lspAgent/context", {"uri": (root / focus).as_uri()})
    replied = time.perf_counter() - started
    time.sleep(2)  # past the reply: what the server keeps
    held = server.pss_kib()
    server.stop()
    return {
        "reply_s": replied,
        "peak_mb": server.peak_kib / 1024,
        "held_mb": held / 1024,
        "tokens": float(manifest.get("total_tokens") or 0),
        "budget": float(manifest.get("budget") or 0),
    }


BUDGET = 1_000_000


def main() -> None:
    global BUDGET
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="baseline checkout")
    parser.add_argument("--root", type=Path, default=KERNEL)
    parser.add_argument("--budget", type=int, default=BUDGET)
    parser.add_argument("--focus", default="kernel/sched/core.c")
    parser.add_argument("--warm", action="store_true", help="also a restart on the same cache")
    args = parser.parse_args()
    BUDGET = args.budget
    root = args.root.resolve()
    mb = source_mb(root)
    print(f"{root}: {mb:,.0f} MB of source; budget {BUDGET:,}; focus {args.focus}; {load()}")
    here = Path(__file__).resolve().parent.parent
    rows = []
    for label, code in (("this checkout", here), ("baseline", args.baseline.resolve())):
        cache = Path(tempfile.mkdtemp(prefix="bench-server-scale-"))
        try:
            starts = [("cold", one_start(code, root, cache, args.focus))]
            if args.warm:
                starts.append(("warm", one_start(code, root, cache, args.focus)))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        for start, m in starts:
            line = (
                f"{label:<14} {start}: reply {m['reply_s']:6.1f} s, peak PSS "
                f"{m['peak_mb']:7,.0f} MB ({m['peak_mb'] / mb:.2f} MB/MB), held after "
                f"{m['held_mb']:7,.0f} MB ({m['held_mb'] / mb:.2f} MB/MB); budget "
                f"{m['budget']:,.0f}, tokens {m['tokens']:,.0f}"
            )
            print(line + f"  ({load()})", flush=True)
            rows.append(line)
    print("target: the server after indexing the kernel and rendering 1M tokens <= 1.5 GB")


if __name__ == "__main__":
    main()
