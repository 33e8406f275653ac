"""`lsp-agent index PATH [--no-cache] [--json] [--jobs N]`: index a workspace, print a summary."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lsp_agent.config import load_settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index",
        help="index a workspace and print a summary",
        description="Discover, parse and index a workspace (honouring .gitignore), using and "
        "refreshing the on-disk cache unless --no-cache is given.",
    )
    parser.add_argument("path", nargs="?", default=".", help="workspace root (default: .)")
    parser.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the cache (a cold run)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--jobs", type=int, default=None, metavar="N", help="worker processes (default: cores)"
    )
    parser.set_defaults(func=run)


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr when it is a terminal; nothing otherwise."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("indexing", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def run(args: argparse.Namespace) -> int:
    from lsp_agent.index.workspace import WorkspaceIndex

    root = Path(args.path)
    if not root.is_dir():
        print(f"lsp-agent index: {args.path} is not a directory", file=sys.stderr)
        return 2
    if args.jobs is not None and args.jobs < 1:
        print("lsp-agent index: --jobs must be at least 1", file=sys.stderr)
        return 2
    settings, warnings = load_settings(root)
    for warning in warnings:
        print(f"lsp-agent: {warning}", file=sys.stderr)
    kwargs = {"cache_path": None} if args.no_cache else {}
    index = WorkspaceIndex(root, settings.index, **kwargs)
    started = time.perf_counter()
    with _progress_bar(sys.stderr.isatty() and not args.json) as progress:
        stats = index.build(jobs=args.jobs, progress=progress)
    seconds = time.perf_counter() - started
    if args.json:
        print(
            json.dumps(
                {
                    "root": str(index.root),
                    "files": stats.files,
                    "languages": stats.languages,
                    "definitions": stats.definitions,
                    "references": stats.references,
                    "skipped": stats.skipped,
                    "decode_errors": stats.decode_errors,
                    "parsed": stats.parsed,
                    "from_cache": stats.from_cache,
                    "cache": None if index.cache_path is None else str(index.cache_path),
                    "seconds": round(seconds, 3),
                },
                sort_keys=False,
            )
        )
        return 0
    langs = ", ".join(f"{name} {count}" for name, count in stats.languages.items()) or "none"
    skipped = ", ".join(f"{reason} {count}" for reason, count in stats.skipped.items()) or "none"
    print(f"{index.root}: {stats.files} files indexed in {seconds:.2f} s")
    print(f"  languages:   {langs}")
    print(f"  symbols:     {stats.definitions} definitions, {stats.references} references")
    print(f"  skipped:     {skipped}")
    print(f"  from cache:  {stats.from_cache} files, parsed {stats.parsed}")
    if stats.decode_errors:
        print(f"  not UTF-8:   {stats.decode_errors} files (decoded with replacement)")
    return 0
