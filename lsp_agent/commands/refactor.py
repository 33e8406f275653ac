"""`lsp-agent refactor` (not built yet)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("refactor", help="(not built yet)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print("lsp-agent refactor: not built yet", file=sys.stderr)
    return 2
