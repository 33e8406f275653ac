"""`lsp-agent index PATH [--no-cache] [--json] [--jobs N]`: index a workspace, print a summary."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lsp_agent.config import ConfigError, Settings, workspace_cache_dir

if TYPE_CHECKING:
    from lsp_agent.index.workspace import WorkspaceIndex

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index",
        help="index a workspace and print a summary",
        description="Discover, parse and index a workspace (honouring .gitignore), using and "
        "refreshing the on-disk cache unless --no-cache is given.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        default=None,
        help="workspace root (default: the project around the current folder)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the cache (a cold run)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--no-ignore",
        action="store_true",
        help="index files that .gitignore rules exclude (index.ignore still applies)",
    )
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
    from lsp_agent.commands import root_and_settings
    from lsp_agent.index.discovery import TooManyFiles
    from lsp_agent.index.workspace import WorkspaceIndex
    from lsp_agent.workspace_root import RootError

    if args.jobs is not None and args.jobs < 1:
        print("lsp-agent index: --jobs must be at least 1", file=sys.stderr)
        return 2
    try:
        chosen, settings, warnings = root_and_settings(args.path, no_ignore=args.no_ignore)
    except (RootError, ConfigError) as exc:
        print(f"lsp-agent index: {exc}", file=sys.stderr)
        return 2
    root = chosen.path
    if not args.json:
        print(f"workspace root {chosen.describe()}", flush=True)
    for warning in warnings:
        print(f"lsp-agent: {warning}", file=sys.stderr)
    kwargs = {"cache_path": None} if args.no_cache else {}
    index = WorkspaceIndex(root, settings.index, **kwargs)
    started = time.perf_counter()
    try:
        with _progress_bar(sys.stderr.isatty() and not args.json) as progress:
            stats = index.build(jobs=args.jobs, progress=progress)
    except TooManyFiles as exc:
        print(f"lsp-agent index: {exc}", file=sys.stderr)
        return 2
    # As the server and the snapshot command do once they have indexed: the index is
    # long-lived and acyclic, and the build paused the collector, so its next collection (and
    # the one at exit) would walk every object the build made, to free none.
    gc.freeze()
    seconds = time.perf_counter() - started
    ranking_seconds = None
    if stats.parsed and index.cache_path is not None:
        ranking_seconds = _rank_ahead(index, settings)
    from lsp_agent.index.discovery import sparse_ignore_warning

    sparse = sparse_ignore_warning(index.root, index.ignore_rules, stats.files)
    if sparse is not None:
        print(f"lsp-agent: {sparse}", file=sys.stderr)
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
                    "generated": stats.generated,
                    "parsed": stats.parsed,
                    "from_cache": stats.from_cache,
                    "cache": None if index.cache_path is None else str(index.cache_path),
                    "seconds": round(seconds, 3),
                    "ranking_seconds": None
                    if ranking_seconds is None
                    else round(ranking_seconds, 3),
                },
                sort_keys=False,
            )
        )
        return 0
    langs = ", ".join(f"{name} {count}" for name, count in stats.languages.items()) or "none"
    skipped = ", ".join(f"{reason} {count}" for reason, count in stats.skipped.items()) or "none"
    print(f"  {stats.files} files indexed in {seconds:.2f} s")
    print(f"  languages:   {langs}")
    print(f"  symbols:     {stats.definitions} definitions, {stats.references} references")
    print(f"  skipped:     {skipped}")
    print(f"  from cache:  {stats.from_cache} files, parsed {stats.parsed}")
    if ranking_seconds is not None:
        print(f"  ranked:      in {ranking_seconds:.2f} s (kept for the next snapshot)")
    if stats.decode_errors:
        print(f"  not UTF-8:   {stats.decode_errors} files (decoded with replacement)")
    if stats.generated:
        print(f"  generated:   {stats.generated} files (ranked down in the snapshot)")
    return 0


def _rank_ahead(index: WorkspaceIndex, settings: Settings) -> float:
    """Rank the files for the snapshot and keep the ranking in the snapshot's state dir, as
    the server renders its prefix ahead of the first request (handlers/indexing.py): parsed
    files changed the ranking, and the next ``lsp-agent snapshot`` (another process) would
    otherwise build the reference graph first. Seconds taken."""
    from lsp_agent.context.snapshot import SnapshotBuilder

    started = time.perf_counter()
    state_dir = workspace_cache_dir(index.root) / "snapshot"  # the snapshot command's
    SnapshotBuilder(index, settings.context, state_dir=state_dir).rank_ahead(graph=False)
    return time.perf_counter() - started
