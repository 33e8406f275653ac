"""`lsp-agent tasks [--json]`: the workspace's task journal (server and batch tasks)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from lsp_agent.tasks.model import Task, task_summary


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tasks",
        help="list journaled tasks",
        description="List the tasks journaled for a workspace, newest first: those started "
        "by the language server and by `lsp-agent refactor`/`fix`.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--root", type=Path, help="workspace root (default: the project around the current folder)"
    )
    parser.add_argument("--run", metavar="RUN_ID", help="only the tasks of one batch run")
    parser.add_argument(
        "--manifest",
        metavar="TASK_ID",
        help="what went into each request of one task: its snapshot, then per request the "
        "sections, files, tokens, duplicated tokens and expected cached share",
    )
    parser.add_argument("--limit", type=int, default=50, help="most tasks shown (default 50)")
    parser.add_argument(
        "--prune",
        action="store_true",
        help="delete finished tasks past [journal] keep_tasks (default 1000) or older than "
        "keep_days (default 90), and their transcripts",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lsp_agent.config import workspace_cache_dir
    from lsp_agent.tasks.journal import TaskJournal
    from lsp_agent.workspace_root import RootError, choose_root

    try:
        chosen = choose_root([], Path.cwd(), args.root)
    except RootError as exc:
        print(f"lsp-agent tasks: {exc}", file=sys.stderr)
        return 2
    root = chosen.path
    path = workspace_cache_dir(root) / "tasks.sqlite"
    if args.prune:
        return _prune(root, path)
    if args.manifest:
        return _manifest(chosen, path, args.manifest, as_json=args.json)
    tasks: list[Task] = []
    if path.exists():
        with TaskJournal(path) as journal:
            tasks = journal.list(run_id=args.run, limit=args.limit)
    if args.json:
        print(json.dumps({"root": str(root), "tasks": [task_summary(t) for t in tasks]}, indent=2))
        return 0
    print(f"workspace root {chosen.describe()}")
    if not tasks:
        print(f"no tasks journaled for {root}", file=sys.stderr)
        return 0
    for task in tasks:
        data = task_summary(task)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(task.created_at))
        files = ", ".join(data["files"][:3]) + (" …" if len(data["files"]) > 3 else "")
        print(
            f"{task.id}  {when}  {data['state']:<15} {data['tokens']:>9,} tok "
            f"{data['cachedTokens']:>9,} cached  {task.title}  [{files}]"
        )
    return 0


def _manifest(chosen: Any, path: Path, task_id: str, *, as_json: bool) -> int:
    """``--manifest TASK_ID``: the task's journaled context (agents/manifests.py, the shape
    ``lspAgent/context {taskId}`` answers with)."""
    from lsp_agent.agents.manifests import context_lines, task_context
    from lsp_agent.tasks import TaskJournal

    task = None
    if path.exists():
        with TaskJournal(path) as journal:
            task = journal.get(task_id)
    if task is None:
        print(
            f"lsp-agent tasks: no task {task_id!r} in the journal of {chosen.path} "
            "(`lsp-agent tasks` lists them; --root picks another workspace)",
            file=sys.stderr,
        )
        return 2
    data = task_context(task.result)
    if as_json:
        head = {"root": str(chosen.path), "taskId": task.id, "state": str(task.state)}
        print(json.dumps({**head, "title": task.title, **data}, indent=2))
        return 0
    print(f"workspace root {chosen.describe()}")
    print(f"task {task.id}  {task.state}  {task.title}")
    for line in context_lines(data):
        print(line)
    return 0


def _prune(root: Path, path: Path) -> int:
    from lsp_agent.agents.orchestrator import transcripts_dir
    from lsp_agent.config import ConfigError, load_settings
    from lsp_agent.tasks.journal import TaskJournal

    try:
        settings, warnings = load_settings(root, strict=True)
    except ConfigError as exc:
        print(f"lsp-agent tasks: {exc}", file=sys.stderr)
        return 2
    for warning in warnings:
        print(f"lsp-agent: warning: {warning}", file=sys.stderr)
    retention = settings.journal
    deleted: list[str] = []
    if path.exists():
        with TaskJournal(path) as journal:
            deleted = journal.prune(
                keep_tasks=retention.keep_tasks,
                keep_days=retention.keep_days,
                transcripts=transcripts_dir(root),
            )
    print(
        f"pruned {len(deleted)} finished task(s) and their transcripts from {root} "
        f"(keeping the newest {retention.keep_tasks or 'all'}, none older than "
        f"{retention.keep_days or 'any'} days)"
    )
    return 0
