"""Benchmark the workspace index; prints figures (not a test).

    python bench/bench_index.py [PATH] [--repeat N]

Corpus: PATH, or the running interpreter's standard library (site-packages and __pycache__
skipped). Each phase runs in a fresh subprocess so its peak RSS is its own:

- floor: a bare single-process loop that parses every file the index parses and runs the same
  tags queries (compiled once), over bytes already in memory;
- cold: ``WorkspaceIndex.build()`` without a cache (discovery, reading, parsing, records);
- warm: ``build()`` again from a cache written by a previous run;
- update: ``update(path, text)`` of an open buffer on the file closest to 2,000 lines.

Targets: cold <= 1.0x floor, warm <= 10% of cold, update p95 <= 15 ms, <= 10 MB RSS per MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

from lsp_agent.config import IndexSettings


def _settings(root: Path) -> IndexSettings:
    if root == Path(sysconfig.get_paths()["stdlib"]).resolve():
        return IndexSettings(ignore=("site-packages/", "__pycache__/"))
    return IndexSettings()


class DescendantPeak:
    """Peak RSS (VmHWM) of this process's descendants, sampled from /proc.

    Pool workers are children of the forkserver, not of us, so RUSAGE_CHILDREN misses them."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DescendantPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            parents: dict[int, int] = {}
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        with open(f"/proc/{entry}/stat") as handle:
                            parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
                    except (OSError, ValueError, IndexError):
                        continue
            mine, frontier = set(), {os.getpid()}
            while frontier:
                frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - mine
                mine |= frontier
            for pid in mine:
                try:
                    with open(f"/proc/{pid}/status") as handle:
                        for line in handle:
                            if line.startswith("VmHWM:"):
                                self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                except OSError:
                    continue


def _rss_mb(children: DescendantPeak | None = None) -> dict[str, float]:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if children is not None:
        children_kb = max(children_kb, children.peak_kb)
    return {"rss_mb": self_kb / 1024, "children_rss_mb": children_kb / 1024}


def phase_floor(root: Path, no_ignore: bool = False) -> dict:
    from tree_sitter import QueryCursor

    from lsp_agent.index import languages
    from lsp_agent.index.discovery import IgnoreRules, discover, read_source

    settings = _settings(root)
    # The file set `lsp-agent index --no-ignore` parses (bench_index_scale's cold runs): a
    # tree whose .gitignore excludes everything (Debian's kernel sources) had a 0 s floor.
    rules = IgnoreRules(root, settings.ignore, use_gitignore=not no_ignore)
    found = discover(root, rules, settings.max_file_bytes)
    files = []
    for item in found.files:
        language = languages.language_for_path(item.path)
        data = read_source(root / item.path, settings.max_file_bytes)
        if language and isinstance(data, bytes):
            files.append((language, data))
    languages.warm_up()
    parsers = {name: languages.new_parser(name) for name in languages.BY_NAME}
    started = time.perf_counter()
    for language, data in files:
        tree = parsers[language].parse(data)
        QueryCursor(languages.load_query(language)).matches(tree.root_node)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "files": len(files), "bytes": sum(len(d) for _, d in files)}


def phase_cold(root: Path, jobs: int | None) -> dict:
    from lsp_agent.index.workspace import WorkspaceIndex

    index = WorkspaceIndex(root, _settings(root), cache_path=None)
    with DescendantPeak() as children:
        started = time.perf_counter()
        stats = index.build(jobs=jobs)
        seconds = time.perf_counter() - started
    source = sum(e.size for e in index.entries().values())
    return {"seconds": seconds, "files": stats.files, "bytes": source, **_rss_mb(children)}


def phase_warm(root: Path, cache: Path) -> dict:
    from lsp_agent.index.workspace import WorkspaceIndex

    index = WorkspaceIndex(root, _settings(root), cache_path=cache)
    started = time.perf_counter()
    stats = index.build()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "parsed": stats.parsed, "from_cache": stats.from_cache, **_rss_mb()}


def phase_update(root: Path, cache: Path, rounds: int = 60) -> dict:
    from lsp_agent.index.workspace import WorkspaceIndex

    index = WorkspaceIndex(root, _settings(root), cache_path=cache)
    index.build()
    python = [e for e in index.entries().values() if e.language == "python"]
    target = min(python, key=lambda e: abs(e.lines - 2000))
    text = index.text(target.path) or ""
    index.definitions("x")  # a server that answered a lookup: the name table is unpacked
    lines = text.splitlines(keepends=True)
    timings: list[float] = []
    for i in range(rounds):
        # A realistic keystroke: one line changes somewhere in the middle of the file.
        edited = list(lines)
        edited[len(lines) // 2] = f"# edit {i}\n"
        started = time.perf_counter()
        index.update(target.path, "".join(edited))
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "path": target.path,
        "lines": target.lines,
        "p50_ms": statistics.median(timings),
        "p95_ms": timings[int(len(timings) * 0.95) - 1],
    }


def _run_phase(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"phase {args[0]} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=sysconfig.get_paths()["stdlib"])
    parser.add_argument("--repeat", type=int, default=1, help="best of N for timed phases")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        name, *rest = args.phase
        root = Path(rest[0]).resolve()
        if name == "floor":
            result = phase_floor(root, no_ignore=rest[1:] == ["no-ignore"])
        elif name == "cold":
            result = phase_cold(root, int(rest[1]) if rest[1] != "-" else None)
        elif name == "warm":
            result = phase_warm(root, Path(rest[1]))
        else:
            result = phase_update(root, Path(rest[1]))
        print(json.dumps(result))
        return

    root = str(Path(args.path).resolve())
    jobs = str(args.jobs) if args.jobs else "-"
    with tempfile.TemporaryDirectory() as tmp:
        cache = str(Path(tmp) / "index.sqlite")
        # Alternate floor and cold runs so both see the same background load.
        floors, colds = [], []
        for _ in range(args.repeat):
            floors.append(_run_phase("floor", root))
            colds.append(_run_phase("cold", root, jobs))
        floor = min(floors, key=lambda r: r["seconds"])
        cold = min(colds, key=lambda r: r["seconds"])
        pairs = ", ".join(
            f"{c['seconds'] / f['seconds']:.2f}x" for f, c in zip(floors, colds, strict=True)
        )
        single = _run_phase("cold", root, "1")  # for reference: the same work on one process
        _run_phase("warm", root, cache)  # writes the cache
        warm = min(
            (_run_phase("warm", root, cache) for _ in range(args.repeat)),
            key=lambda r: r["seconds"],
        )
        update = _run_phase("update", root, cache)
    source_mb = cold["bytes"] / 1e6
    peak = max(cold["rss_mb"], cold["children_rss_mb"])
    print(
        f"corpus: {root} ({cold['files']} files, {source_mb:.1f} MB indexed; "
        f"{floor['files']} parsed files, {floor['bytes'] / 1e6:.1f} MB; {os.cpu_count()} cores)"
    )
    print(f"floor  (parse + queries, 1 core): {floor['seconds']:.2f} s")
    print(
        f"cold, one process (--jobs 1):     {single['seconds']:.2f} s = "
        f"{single['seconds'] / floor['seconds']:.2f}x floor (the index's own overhead)"
    )
    print(
        f"cold   (no cache):                {cold['seconds']:.2f} s = "
        f"{cold['seconds'] / floor['seconds']:.2f}x floor   (target <= 1.0x; per run: {pairs})"
    )
    print(
        f"warm   (cache present):           {warm['seconds']:.3f} s = "
        f"{100 * warm['seconds'] / cold['seconds']:.1f}% of cold   (target <= 10%); "
        f"{warm['from_cache']} from cache, {warm['parsed']} parsed"
    )
    print(
        f"update ({update['path']}, {update['lines']} lines): p50 {update['p50_ms']:.2f} ms, "
        f"p95 {update['p95_ms']:.2f} ms   (target p95 <= 15 ms)"
    )
    print(
        f"peak RSS (cold): main {cold['rss_mb']:.0f} MB, largest worker "
        f"{cold['children_rss_mb']:.0f} MB = {peak / source_mb:.1f} MB per MB of source "
        f"(target <= 10); warm main {warm['rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
