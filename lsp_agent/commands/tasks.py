"""`lsp-agent tasks` (not built yet)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tasks", help="(not built yet)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print("lsp-agent tasks: not built yet", file=sys.stderr)
    return 2
