"""`lsp-agent fix [PATH ...] --diagnostics FILE`: one fix task per file with diagnostics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lsp_agent.batch.options import add_common_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fix",
        help="fix diagnostics from a linter's JSON output, headless",
        description="Read diagnostics (ruff --output-format json, pyright --outputjson, "
        "eslint -f json, or LSP PublishDiagnosticsParams JSON; the format is detected) and run "
        "one fix task per file. PATHs restrict which files are fixed.",
    )
    parser.add_argument(
        "--diagnostics",
        "-d",
        type=Path,
        required=True,
        metavar="FILE",
        help="the linter's JSON output (- for stdin)",
    )
    parser.add_argument("--instruction", default="", help="extra guidance for the fixes")
    add_common_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lsp_agent.batch import UsageError, run_batch
    from lsp_agent.batch.options import options_from_args

    try:
        options = options_from_args(args, kind="fix", instruction=args.instruction)
    except UsageError as exc:
        print(f"lsp-agent fix: {exc}", file=sys.stderr)
        return 2
    return run_batch(options)
