"""`lsp-agent snapshot PATH`: print the long-context snapshot, its manifest, or both as JSON.

The prefix persists under the workspace cache directory, so running the command twice on an
unchanged workspace prints a byte-identical prefix (and after a small edit, the same prefix with
the edit in the tail)."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

from lsp_agent.commands import jsonout
from lsp_agent.config import ConfigError, workspace_cache_dir

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
BOUNDARY = "<<<<<<<< end of the stable prefix (cache boundary); the volatile tail follows >>>>>>>>"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "snapshot",
        help="print the long-context snapshot or manifest",
        description="Index a workspace and print its token-budgeted snapshot: the stable "
        "prefix, a boundary line, then the volatile tail.",
    )
    parser.add_argument("path", type=Path, metavar="PATH", help="workspace root")
    parser.add_argument("--budget", type=int, metavar="TOKENS", help="snapshot size in tokens")
    parser.add_argument(
        "--focus", nargs="+", default=[], metavar="FILE", help="files the task is about"
    )
    parser.add_argument("--instruction", default="", metavar="TEXT", help="the task, for ranking")
    parser.add_argument(
        "--no-ignore",
        action="store_true",
        help="index files that .gitignore rules exclude (index.ignore still applies)",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--manifest", action="store_true", help="print the manifest as JSON")
    output.add_argument("--json", action="store_true", help="print {prefix, tail, manifest}")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor write the index cache and the persisted prefix",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so `lsp-agent --help` stays fast.
    from lsp_agent.commands import root_and_settings
    from lsp_agent.context.snapshot import SnapshotBuilder, budget_for
    from lsp_agent.index.discovery import TooManyFiles
    from lsp_agent.index.workspace import WorkspaceIndex, relative_path
    from lsp_agent.workspace_root import RootError

    if args.budget is not None and args.budget <= 0:
        print("lsp-agent snapshot: --budget must be a positive number of tokens", file=sys.stderr)
        return EXIT_USAGE
    try:
        chosen, settings, warnings = root_and_settings(args.path, no_ignore=args.no_ignore)
    except (RootError, ConfigError) as exc:
        print(f"lsp-agent snapshot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    root = chosen.path
    # stdout is the context text itself (byte-stable); the human-readable stream is stderr.
    print(f"lsp-agent: workspace root {chosen.describe()}", file=sys.stderr)
    for warning in warnings:
        print(f"lsp-agent: {warning}", file=sys.stderr)
    cache_dir = workspace_cache_dir(root)
    index = WorkspaceIndex(
        root, settings.index, cache_path=None if args.no_cache else cache_dir / "index.sqlite"
    )
    try:
        focus = [_focus_path(index.root, name, relative_path) for name in args.focus]
    except ValueError as exc:
        print(f"lsp-agent snapshot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        index.build()
    except TooManyFiles as exc:
        print(f"lsp-agent snapshot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # As the server does once it has indexed (handlers/indexing.py): the index is long-lived
    # and acyclic, so the collector need not rescan its millions of objects during the build.
    gc.freeze()
    builder = SnapshotBuilder(
        index, settings.context, state_dir=None if args.no_cache else cache_dir / "snapshot"
    )
    budget = args.budget or budget_for(settings)
    try:
        snapshot = builder.build(budget=budget, focus=focus, instruction=args.instruction)
    except ValueError as exc:
        print(f"lsp-agent snapshot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.manifest:
        _write(jsonout.dumps(snapshot.manifest.to_json()) + "\n")
    elif args.json:
        data = {
            "prefix": snapshot.prefix,
            "tail": snapshot.tail,
            "manifest": snapshot.manifest.to_json(),
        }
        _write(jsonout.dumps(data, ensure_ascii=False) + "\n")
    else:
        _write(snapshot.prefix + BOUNDARY + "\n" + snapshot.tail)
    return EXIT_OK


def _focus_path(root: Path, name: str, relative_path: object) -> str:
    """A focus file named relative to the current directory (or absolute), else to the root."""
    candidate = Path(name)
    if not candidate.is_absolute() and not candidate.exists():
        candidate = root / candidate
    rel = relative_path(root, candidate.resolve())  # type: ignore[operator]
    if not rel:
        raise ValueError(f"focus must be a file, not the workspace root: {name}")
    return rel


def _write(text: str) -> None:
    # Write UTF-8 whatever the locale: snapshots hold arbitrary source text.
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.flush()
