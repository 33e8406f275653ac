"""`lsp-agent serve`: the language server over stdio (default) or TCP (for debugging).

stdout is the protocol channel: logging goes to stderr only, and nothing here prints.
"""

from __future__ import annotations

import argparse
import logging
import sys

LOG_LEVELS = ("debug", "info", "warning", "error")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the language server (stdio by default)",
        description="Run the lsp-agent language server. Editors start it over stdio.",
    )
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--stdio", action="store_true", help="speak over stdin/stdout (default)")
    transport.add_argument("--tcp", metavar="HOST:PORT", help="listen on a TCP socket instead")
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default="warning", help="stderr log level"
    )
    parser.set_defaults(func=run)


def parse_address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--tcp wants HOST:PORT, e.g. 127.0.0.1:2087; got {value!r}")
    return host or "127.0.0.1", int(port)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pygls logs every message body at INFO; keep that for --log-level debug only.
    logging.getLogger("pygls").setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


def run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    address = None
    if args.tcp:
        try:
            address = parse_address(args.tcp)
        except ValueError as exc:
            print(f"lsp-agent serve: {exc}", file=sys.stderr)
            return 2
    # Indexing, snapshots and the agent worker run on other threads; a shorter GIL switch
    # interval (default 5 ms) lets the protocol thread answer between their steps sooner.
    sys.setswitchinterval(0.001)
    from lsp_agent.handlers.server import create_server

    server = create_server()
    if address is not None:
        server.start_tcp(*address)
    else:
        server.start_io()
    return 0
