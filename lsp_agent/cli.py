"""The ``lsp-agent`` command: a thin dispatcher over one module per subcommand.

Each module in ``lsp_agent.commands`` exposes ``register(subparsers) -> None``; the parser it adds
sets ``func`` to a callable taking the parsed namespace and returning an exit code. Modules are
imported lazily per subcommand so ``lsp-agent index`` never pays for pygls or openai.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from lsp_agent import __version__

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("lsp_agent.commands.serve", "run the language server (stdio by default)"),
    "index": ("lsp_agent.commands.index", "index a workspace and print a summary"),
    "snapshot": ("lsp_agent.commands.snapshot", "print the long-context snapshot or manifest"),
    "refactor": ("lsp_agent.commands.refactor", "run an instruction over files, headless"),
    "fix": ("lsp_agent.commands.fix", "fix diagnostics from a linter's JSON output, headless"),
    "goal": ("lsp_agent.commands.goal", "run a project goal as committed steps on a branch"),
    "tasks": ("lsp_agent.commands.tasks", "list journaled tasks"),
    "trust": ("lsp_agent.commands.trust", "say whether a workspace may choose the endpoint"),
}

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what shells report for a killed writer


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lsp-agent",
        description="A language server and batch tool that dispatches fix and refactor tasks "
        "to a multi-agent worker over any OpenAI-compatible endpoint.",
    )
    parser.add_argument("--version", action="version", version=f"lsp-agent {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if only is not None and name != only:
            subparsers.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if not a.startswith("-")), "")
    parser = build_parser(only=command if command in SUBCOMMANDS else "")
    args = parser.parse_args(args_list)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USAGE if args_list else EXIT_OK
    try:
        return int(func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`lsp-agent tasks | head`): stop quietly, as git does. Point
        # stdout at devnull so the interpreter's final flush cannot raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
