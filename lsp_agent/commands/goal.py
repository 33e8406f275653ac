"""`lsp-agent goal "GOAL" [PATH ...]`: give it a project goal and walk away.

Also `goal --resume RUN`, `goal --status [RUN]` (no RUN: list the runs), `goal --apply RUN`.
Exit 0: the run succeeded (or, with --dry-run, was planned; --status/--apply worked); 1: it
stopped before the end (budget, stuck, paused, failed) or could not be applied; 2: usage or
configuration error; 130: interrupted (the run is resumable).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from lsp_agent.batch.options import positive_int

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _amount(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value}")
    return number


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "goal",
        help="run a project goal as planned, verified, committed steps on a branch",
        description="A planner splits the goal into steps; each step is a task on the run's "
        "own worktree and branch (lsp-agent/<run-id>), committed when it is done. The run is "
        "journaled: after a crash, `--resume RUN` continues it. Your working tree is not "
        "touched until `--apply RUN`.",
    )
    parser.add_argument("goal", nargs="?", metavar="GOAL", help="what the run should achieve")
    parser.add_argument("paths", nargs="*", metavar="PATH", help="where to work (default: all)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--resume", metavar="RUN", help="continue a stopped or killed run")
    which.add_argument(
        "--status", metavar="RUN", nargs="?", const="", help="show a run (no RUN: list runs)"
    )
    which.add_argument("--apply", metavar="RUN", help="bring a run's final diff into your files")
    budget = parser.add_argument_group("budgets (for the whole run)")
    budget.add_argument("--budget-tokens", type=positive_int, help="tokens (cached at their rate)")
    budget.add_argument("--budget-cost", type=_amount, help="estimated cost in dollars")
    budget.add_argument("--max-hours", type=_amount, help="wall clock while running")
    parser.add_argument(
        "--jobs", "-j", type=positive_int, default=1, help="steps at once (default 1)"
    )
    parser.add_argument("--dry-run", action="store_true", help="plan only; --resume runs it")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--root", type=Path, help="workspace root (default: the git work tree of the PATHs)"
    )
    model = parser.add_argument_group("model (override settings)")
    model.add_argument("--provider", help="deepseek, moonshot, openai or local")
    model.add_argument("--model", help="model name for every role")
    model.add_argument("--base-url", help="OpenAI-compatible endpoint URL")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lsp_agent.goals.start import GoalError
    from lsp_agent.workspace_root import RootError, choose_root

    try:
        chosen = choose_root(args.paths, Path.cwd(), args.root)
    except RootError as exc:
        print(f"lsp-agent goal: {exc}", file=sys.stderr)
        return EXIT_USAGE
    root = chosen.path
    print(f"lsp-agent: workspace root {chosen.describe()}", file=sys.stderr)
    try:
        if args.status is not None:
            return _status(root, args.status, as_json=args.json)
        if args.apply:
            return _apply(root, args.apply, as_json=args.json)
        if not args.resume and not args.goal:
            raise GoalError("say the goal, or use --resume, --status or --apply RUN")
        return asyncio.run(_run(root, args))
    except GoalError as exc:
        print(f"lsp-agent goal: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lsp-agent goal: interrupted; the run is resumable (--resume)", file=sys.stderr)
        return EXIT_INTERRUPTED


def _budget(args: argparse.Namespace) -> Any:
    from lsp_agent.goals.budget import RunBudget

    if not (args.budget_tokens or args.budget_cost or args.max_hours):
        return None
    return RunBudget(args.budget_tokens or 0, args.budget_cost or 0.0, args.max_hours or 0.0)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    model = {
        key: value
        for key, value in (
            ("provider", args.provider),
            ("model", args.model),
            ("base_url", args.base_url),
        )
        if value
    }
    return {"model": model} if model else {}


async def _run(root: Path, args: argparse.Namespace) -> int:
    from lsp_agent.agents.client import OpenAIChatClient
    from lsp_agent.agents.providers import resolve_provider
    from lsp_agent.config import ConfigError, load_settings
    from lsp_agent.goals.budget import RunBudget
    from lsp_agent.goals.ledger import PLANNED, SUCCEEDED
    from lsp_agent.goals.report import report_json, report_text
    from lsp_agent.goals.start import GoalError, execute, new_ledger, resumable
    from lsp_agent.goals.store import RunStore, journal_for

    try:
        settings, warnings = load_settings(root, _overrides(args), strict=True)
    except ConfigError as exc:
        raise GoalError(str(exc)) from None
    for warning in warnings:
        print(f"lsp-agent goal: {warning}", file=sys.stderr)
    try:
        provider = resolve_provider(settings)
    except ConfigError as exc:
        raise GoalError(str(exc)) from None
    journal = journal_for(root)
    store = RunStore(journal)
    try:
        if args.resume:
            ledger = resumable(store, args.resume, _budget(args))
        else:
            goal = args.goal
            if args.paths:
                goal += "\n\nWork within: " + ", ".join(args.paths)
            ledger = new_ledger(root, goal, _budget(args) or RunBudget())
            store.create(ledger)
            print(f"lsp-agent goal: run {ledger.run_id} on {ledger.branch}", file=sys.stderr)
        client = OpenAIChatClient.from_settings(settings, provider=provider)
        try:
            ledger = await execute(
                ledger,
                store=store,
                settings=settings,
                client=client,
                provider=provider,
                jobs=args.jobs,
                plan_only=args.dry_run,
                notify=lambda message: print(f"lsp-agent goal: {message}", file=sys.stderr),
            )
        finally:
            await client.aclose()
    finally:
        journal.close()
    if args.json:
        print(json.dumps(report_json(ledger), indent=2))
    else:
        sys.stderr.write(report_text(ledger))
        if args.dry_run:
            for number, step in enumerate(ledger.plan, 1):
                print(f"{number}. {step.key}: {step.title} [{', '.join(step.files)}]")
    return EXIT_OK if ledger.state in (SUCCEEDED, PLANNED) else EXIT_FAILED


def _status(root: Path, run_id: str, *, as_json: bool) -> int:
    from lsp_agent.goals.report import report_json, report_text
    from lsp_agent.goals.start import GoalError
    from lsp_agent.goals.store import RunStore, journal_for

    with journal_for(root) as journal:
        store = RunStore(journal)
        if not run_id:
            runs = store.runs()
            if as_json:
                print(json.dumps([report_json(r) for r in runs], indent=2))
            for ledger in [] if as_json else runs:
                print(
                    f"{ledger.run_id}  {ledger.state:<15} {len(ledger.done)}/{len(ledger.plan)}"
                    f"  {ledger.goal.splitlines()[0][:60]}"
                )
            return EXIT_OK
        ledger = store.load(run_id)
    if ledger is None:
        raise GoalError(f"no goal run {run_id!r} in this workspace's journal")
    if as_json:
        print(json.dumps(report_json(ledger), indent=2))
    else:
        sys.stdout.write(report_text(ledger))
    return EXIT_OK


def _apply(root: Path, run_id: str, *, as_json: bool) -> int:
    from lsp_agent.batch.apply import APPLIED
    from lsp_agent.goals.apply import apply_run
    from lsp_agent.goals.start import GoalError
    from lsp_agent.goals.store import RunStore, journal_for

    with journal_for(root) as journal:
        ledger = RunStore(journal).load(run_id)
    if ledger is None:
        raise GoalError(f"no goal run {run_id!r} in this workspace's journal")
    outcomes, problems = apply_run(ledger)
    ok = not problems and all(o.status == APPLIED for o in outcomes)
    if as_json:
        report = {
            "runId": run_id,
            "applied": ok,
            "files": [{"path": o.path, "status": o.status, "message": o.message} for o in outcomes],
            "problems": problems,
        }
        print(json.dumps(report, indent=2))
    for problem in problems:
        print(f"lsp-agent goal: not applied: {problem}", file=sys.stderr)
    for outcome in outcomes:
        if outcome.status != APPLIED:
            print(
                f"lsp-agent goal: {outcome.path}: {outcome.message or outcome.status}",
                file=sys.stderr,
            )
    state = "applied" if ok else "nothing was written"
    print(f"lsp-agent goal: {run_id}: {len(outcomes)} file(s), {state}", file=sys.stderr)
    return EXIT_OK if ok else EXIT_FAILED
