"""Flags shared by `lsp-agent refactor` and `lsp-agent fix`, and their mapping onto Settings."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.batch.errors import UsageError
from lsp_agent.config import PROVIDERS


@dataclass
class BatchOptions:
    kind: str  # "refactor" | "fix"
    instruction: str
    paths: list[str]
    cwd: Path
    root: Path | None = None  # --root; None: workspace_root.choose_root decides from the paths
    apply: bool = False
    apply_unverified: bool = False  # also write results whose checks still fail (implies apply)
    diff: bool = False
    json: bool = False
    jobs: int | None = None  # None: Settings.jobs
    dry_run: bool = False
    verbose: bool = False
    resume: bool = False
    split: str = "cluster"
    max_cluster: int = 8
    diagnostics_file: Path | None = None
    task: int | None = None  # --task N: with --dry-run -v, the one task whose context is shown
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> str:
        """What stdout carries: "json", "diff", or "none" (--apply without --json/--diff)."""
        if self.json:
            return "json"
        return "diff" if self.diff or not self.apply else "none"


MAX_JOBS = 32  # parallel tasks; each runs several agents, so more would only queue at the API


def _jobs(value: str) -> int:
    number = positive_int(value)
    if number > MAX_JOBS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_JOBS}, got {number}")
    return number


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _parse_intermixed(parser: argparse.ArgumentParser) -> None:
    """Let PATHs follow options (`refactor "..." --jobs 4 src/`).

    Plain argparse binds the positionals in one go before the first option, so a PATH after an
    option is "unrecognized" (bpo-14191). ``parse_known_intermixed_args`` fixes that but cannot
    run on the top-level parser (it has subparsers), so this subparser uses it for itself; the
    guard lets its two inner ``parse_known_args`` calls reach the normal implementation.
    """
    normal = parser.parse_known_args
    busy = False

    def parse(args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        nonlocal busy
        if busy:
            return normal(args, namespace)
        busy = True
        try:
            return parser.parse_known_intermixed_args(args, namespace)
        finally:
            busy = False

    parser.parse_known_args = parse  # type: ignore[method-assign]


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    _parse_intermixed(parser)
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="files, folders or globs (default: the root)"
    )
    out = parser.add_argument_group("output (one of --diff, --apply, --json)")
    modes = out.add_mutually_exclusive_group()
    modes.add_argument("--diff", action="store_true", help="print a unified diff (the default)")
    modes.add_argument("--apply", action="store_true", help="write the changes to the files")
    modes.add_argument("--json", action="store_true", help="print one JSON report object")
    out.add_argument(
        "--apply-unverified",
        action="store_true",
        help="write the changes, also of tasks whose changes still fail the project's checks",
    )
    out.add_argument(
        "--dry-run", action="store_true", help="show the plan and context; call no model"
    )
    out.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="with --dry-run: print the context each task would send",
    )
    out.add_argument(
        "--task",
        type=positive_int,
        metavar="N",
        help="with --dry-run -v: only task N's context (numbers as in the plan)",
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--jobs", "-j", type=_jobs, help=f"parallel tasks, 1 to {MAX_JOBS} (default: settings)"
    )
    run.add_argument("--resume", action="store_true", help="finish the last interrupted run")
    run.add_argument(
        "--root",
        type=Path,
        help="workspace root (default: the git work tree or project folder of the PATHs)",
    )
    run.add_argument(
        "--no-ignore",
        action="store_true",
        help="index files that .gitignore rules exclude (index.ignore still applies)",
    )
    run.add_argument(
        "--split",
        choices=("cluster", "file"),
        default="cluster",
        help="one task per file, or per cluster of files that reference each other",
    )
    run.add_argument(
        "--max-cluster", type=positive_int, default=8, help="most files in one task (default 8)"
    )
    model = parser.add_argument_group("model (override settings)")
    model.add_argument("--provider", choices=PROVIDERS, help="which endpoint preset to use")
    model.add_argument("--model", help="model name for every role")
    model.add_argument("--base-url", help="OpenAI-compatible endpoint URL")
    model.add_argument("--budget", type=positive_int, help="context budget in tokens")


def options_from_args(args: argparse.Namespace, *, kind: str, instruction: str) -> BatchOptions:
    if args.dry_run and args.apply:
        raise UsageError("--dry-run writes nothing: drop --apply, or drop --dry-run")
    if args.task is not None and not (args.dry_run and args.verbose):
        raise UsageError("--task N picks the context --dry-run -v shows: add --dry-run -v")
    overrides: dict[str, Any] = {}
    if args.no_ignore:
        overrides["index"] = {"use_gitignore": False}
    model: dict[str, Any] = {}
    if args.provider:
        model["provider"] = args.provider
    if args.model:
        model["model"] = args.model
    if args.base_url:
        model["base_url"] = args.base_url
    if model:
        overrides["model"] = model
    if args.budget:
        overrides["context"] = {"budget": args.budget}
    return BatchOptions(
        kind=kind,
        instruction=instruction,
        paths=list(args.paths),
        cwd=Path.cwd(),
        root=args.root,
        apply=args.apply or args.apply_unverified,
        apply_unverified=args.apply_unverified,
        diff=args.diff,
        json=args.json,
        jobs=args.jobs,
        dry_run=args.dry_run,
        verbose=args.verbose,
        resume=args.resume,
        split=args.split,
        max_cluster=args.max_cluster,
        diagnostics_file=getattr(args, "diagnostics", None),
        task=args.task,
        overrides=overrides,
    )
