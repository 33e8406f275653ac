"""`lsp-agent trust [PATH] [--json]`: is this workspace trusted to steer requests, and what
would its .lsp-agent.toml set? Exit 0 when trusted, 1 when not (scripts and editor health
checks can ask). The decision is ``config.workspace_trusted``, the one every caller uses."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lsp_agent.config import (
    WORKSPACE_FILE,
    load_settings,
    trusted_by,
    user_config_path,
    workspace_steering,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "trust",
        help="say whether a workspace may choose the model endpoint and credentials",
        description="Report whether the user config's trusted_workspaces trusts a workspace, "
        "and which endpoint or credential settings its .lsp-agent.toml sets (used only when "
        "trusted). Exit 0 when trusted, 1 when not.",
    )
    parser.add_argument("path", nargs="?", default=".", help="workspace root (default: .)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def report(root: Path) -> dict[str, Any]:
    settings, warnings = load_settings(None)  # the user's own sources only
    entry = trusted_by(root, settings)
    return {
        "workspace": str(root),
        "trusted": entry is not None,
        "trusted_by": entry,
        "user_config": str(user_config_path()),
        "workspace_file": str(root / WORKSPACE_FILE),
        "steering_settings": workspace_steering(root),
        "warnings": warnings,
    }


def run(args: argparse.Namespace) -> int:
    root = Path(args.path).expanduser().resolve()
    if not root.is_dir():
        print(f"lsp-agent trust: {args.path} is not a directory", file=sys.stderr)
        return 2
    data = report(root)
    for warning in data["warnings"]:
        print(f"lsp-agent: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0 if data["trusted"] else 1
    print(f"workspace: {root}")
    if data["trusted"]:
        print(f"trusted: yes, by {data['trusted_by']!r} in {data['user_config']}")
    else:
        print(f"trusted: no (trusted_workspaces in {data['user_config']} does not list it)")
    steering = data["steering_settings"]
    if steering:
        verdict = "used" if data["trusted"] else "ignored"
        print(f"{WORKSPACE_FILE} sets {', '.join(steering)}: {verdict}")
    if not data["trusted"]:
        print(f"to trust it, add to {data['user_config']}:")
        print(f"  trusted_workspaces = [{json.dumps(str(root))}]")
    return 0 if data["trusted"] else 1
