"""`lsp-agent refactor "INSTRUCTION" [PATH ...]`: run an instruction over files, headless."""

from __future__ import annotations

import argparse
import sys

from lsp_agent.batch.options import add_common_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "refactor",
        help="run an instruction over files, headless",
        description="Split the files into tasks (per file or per cluster of files that "
        "reference each other), run them in parallel, and print a unified diff, apply it, "
        "or print a JSON report. Exit 0: all tasks succeeded; 1: some failed; 2: usage or "
        "configuration error.",
    )
    parser.add_argument("instruction", metavar="INSTRUCTION", help="what to change")
    add_common_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lsp_agent.batch import UsageError, run_batch
    from lsp_agent.batch.options import options_from_args

    try:
        options = options_from_args(args, kind="refactor", instruction=args.instruction)
    except UsageError as exc:
        print(f"lsp-agent refactor: {exc}", file=sys.stderr)
        return 2
    return run_batch(options)
