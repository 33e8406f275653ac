"""--dry-run: the plan and the context a run would send, without calling a model.

Shows which files, how many tasks, the estimated prompt tokens of each task's first requests
(the orchestrator's plan_task), the provider and model that would be used — or the exact
variable to set — and a summary of the snapshot manifest (with -v, the snapshot text itself).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, TextIO

from lsp_agent.batch.engine import Prepared
from lsp_agent.config import ConfigError


def _model_line(prep: Prepared) -> tuple[str, str | None, dict[str, Any]]:
    from lsp_agent.agents.providers import describe_provider, resolve_provider

    try:
        provider = resolve_provider(prep.settings)
    except ConfigError as exc:
        return str(exc), prep.settings.model.model or None, {"error": str(exc)}
    model = provider.model_for("coder") or None
    return describe_provider(provider), model, {"provider": provider.name, "model": model}


def _manifest_summary(manifest: Any) -> dict[str, Any]:
    tiers = Counter(entry.tier for entry in manifest.files)
    tokens: Counter[str] = Counter()
    for entry in manifest.files:
        tokens[entry.tier] += entry.tokens
    return {
        "budget": manifest.budget,
        "prefix_tokens": manifest.prefix_tokens,
        "tail_tokens": manifest.tail_tokens,
        "prefix_hash": manifest.prefix_hash,
        "files_by_tier": dict(sorted(tiers.items())),
        "tokens_by_tier": dict(sorted(tokens.items())),
    }


def dry_run(prep: Prepared, out: TextIO) -> int:
    from lsp_agent.batch.worker import BatchWorker

    options = prep.options
    model_line, model_name, model_json = _model_line(prep)
    # No prefix persistence: a dry run must leave no state behind.
    worker = BatchWorker(
        prep.index,
        prep.settings,
        model_name=model_name,
        kind=options.kind,
        persist_prefix=False,
    )
    rows = []
    snapshots = []
    for planned in prep.tasks:
        plan, snapshot = worker.plan(planned)
        rows.append((planned, plan))
        snapshots.append(snapshot)
    total = sum(plan.total_prompt_tokens for _, plan in rows)
    files = sorted({path for planned in prep.tasks for path in planned.files})
    first = _manifest_summary(snapshots[0].manifest) if snapshots else None
    if options.output == "json":
        report = {
            "dry_run": True,
            "command": options.kind,
            "instruction": options.instruction,
            "root": str(prep.root),
            "model": model_json,
            "budget": worker.budget,
            "jobs": prep.jobs,
            "files": files,
            "tasks": [
                {"key": p.key, "title": p.title, "files": p.files, **plan.to_json()}
                for p, plan in rows
            ],
            "estimated_prompt_tokens": total,
            "context": first,
            "warnings": prep.warnings,
        }
        out.write(json.dumps(report, indent=2) + "\n")
        return 0
    w = out.write
    w(f"dry run: {options.kind} {options.instruction!r}\n")
    w(f"root: {prep.root}\n")
    w(f"model: {model_line}\n")
    w(f"context budget: {worker.budget:,} tokens; jobs: {prep.jobs}\n")
    w(f"files: {len(files)}; tasks: {len(rows)} (split: {options.split})\n")
    for number, (planned, plan) in enumerate(rows, 1):
        w(
            f"  {number}. {planned.title}\n"
            f"     files: {', '.join(planned.files)}\n"
            f"     ~{plan.total_prompt_tokens:,} prompt tokens over at least "
            f"{plan.requests} requests (shared prefix {plan.prefix_tokens:,})\n"
        )
    w(f"estimated prompt tokens: {total:,} (first requests only; a lower bound)\n")
    if first is not None:
        tiers = ", ".join(f"{n} {tier}" for tier, n in first["files_by_tier"].items())
        w(
            f"context: prefix {first['prefix_tokens']:,} tokens + tail {first['tail_tokens']:,}"
            f" of budget {first['budget']:,}; files: {tiers}\n"
        )
    for warning in prep.warnings:
        w(f"warning: {warning}\n")
    if options.verbose:
        for planned, snapshot in zip(prep.tasks, snapshots, strict=True):
            w(f"\n===== context for task {planned.title} =====\n")
            w(snapshot.prefix)
            w("\n----- tail -----\n")
            w(snapshot.tail)
            w("\n")
    return 0
