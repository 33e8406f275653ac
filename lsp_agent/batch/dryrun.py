"""--dry-run: the plan and the context a run would send, without calling a model.

Shows the root, which files, how many tasks, per task and in total the prompt tokens of the
first requests (the orchestrator's plan_task), the share the providers' prefix cache is expected
to serve, a cost range where prices are known (batch/estimate.py says what the figures cover),
any request the model's window cannot fit (agents/sizing.py), the provider and model that
would be used — or the exact variable to set — and a summary of the snapshot manifest. With -v
the context itself: every task's, or task N's with --task N.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, TextIO

from lsp_agent.agents.pricing import Price, price_for
from lsp_agent.batch.engine import Prepared
from lsp_agent.batch.errors import UsageError
from lsp_agent.batch.estimate import (
    LOW_REPLY_TOKENS,
    dollars,
    estimate_tasks,
    total_range,
)
from lsp_agent.config import ConfigError

PRICED_ROLES = ("researcher", "coder", "reviewer")
SHIPPED = ("deepseek", "moonshot", "openai")  # priced presets shown when no model is configured


def _model_line(prep: Prepared) -> tuple[str, str | None, dict[str, Any], Any]:
    from lsp_agent.agents.providers import describe_provider, resolve_provider

    try:
        provider = resolve_provider(prep.settings)
    except ConfigError as exc:
        return str(exc), prep.settings.model.model or None, {"error": str(exc)}, None
    model = provider.model_for("coder") or None
    return (
        describe_provider(provider),
        model,
        {"provider": provider.name, "model": model},
        provider,
    )


def _pricings(prep: Prepared, provider: Any) -> list[tuple[str, int, dict[str, Price | None]]]:
    """(provider name, window, role -> price): the configured provider, else each shipped
    preset with its default models (what a new user would choose between)."""
    from lsp_agent.agents import sizing
    from lsp_agent.agents.providers import PRESETS

    settings = prep.settings
    if provider is not None:
        prices = {
            role: price_for(settings, provider.name, provider.model_for(role))
            for role in PRICED_ROLES
        }
        window = sizing.window_for(settings, provider.model_for("coder"), provider)
        return [(provider.name, window, prices)]
    rows = []
    for name in SHIPPED:
        preset = PRESETS[name]
        prices = {role: price_for(settings, name, preset.models[role]) for role in PRICED_ROLES}
        rows.append((name, settings.model.context_window or preset.context_window, prices))
    return rows


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
    from lsp_agent.agents import sizing
    from lsp_agent.batch.taskflow import BatchTaskFlow

    options = prep.options
    if options.task is not None and not 1 <= options.task <= len(prep.tasks):
        raise UsageError(f"--task {options.task}: the plan has tasks 1 to {len(prep.tasks)}")
    model_line, model_name, model_json, provider = _model_line(prep)
    # No prefix persistence: a dry run must leave no state behind.
    flow = BatchTaskFlow(
        prep.index,
        prep.settings,
        model_name=model_name,
        kind=options.kind,
        persist_prefix=False,
    )
    rows = []
    snapshots = []
    for planned in prep.tasks:
        plan, snapshot = flow.plan(planned)
        rows.append((planned, plan))
        snapshots.append(snapshot)
    plans = [plan for _, plan in rows]
    window = sizing.window_for(prep.settings, model_name, provider)
    family = sizing.family_of(prep.settings, model_name, provider)
    estimates = estimate_tasks(plans, jobs=prep.jobs, window=window, family=family)
    pricings = [
        (name, prices, estimate_tasks(plans, jobs=prep.jobs, window=win, family=family))
        for name, win, prices in _pricings(prep, provider)
    ]
    total = sum(e.prompt_tokens for e in estimates)
    cached = sum(e.cached_tokens for e in estimates)
    requests = sum(len(e.requests) for e in estimates)
    unfit = [
        (number, request)
        for number, estimate in enumerate(estimates, 1)
        for request in estimate.requests
        if not request.fits
    ]
    files = sorted({path for planned in prep.tasks for path in planned.files})
    first = _manifest_summary(snapshots[0].manifest) if snapshots else None
    from lsp_agent.agents.verification import resolve_checks
    from lsp_agent.verify.checks import checks_json, describe_checks

    checks, check_notes = resolve_checks(prep.root, prep.settings)
    if options.output == "json":
        report = {
            "dry_run": True,
            "command": options.kind,
            "instruction": options.instruction,
            "root": str(prep.root),
            "model": model_json,
            "budget": flow.budget,
            "window": window,
            "jobs": prep.jobs,
            "files": files,
            "tasks": [
                {
                    "key": p.key,
                    "title": p.title,
                    "files": p.files,
                    **plan.to_json(),
                    "expected_cached_tokens": estimate.cached_tokens,
                    "cost": {
                        name: _range_json(ests[n].cost_range(prices))
                        for name, prices, ests in pricings
                    },
                    "unfit": [r.key for r in estimate.requests if not r.fits],
                }
                for n, ((p, plan), estimate) in enumerate(zip(rows, estimates, strict=True))
            ],
            "estimated_prompt_tokens": total,
            "expected_cached_tokens": cached,
            "requests": requests,
            "cost": {
                name: _range_json(total_range(ests, prices)) for name, prices, ests in pricings
            },
            "cost_covers": COST_COVERS,
            "context": first,
            "checks": checks_json(checks),
            "check_notes": check_notes,
            "warnings": prep.warnings,
        }
        out.write(json.dumps(report, indent=2) + "\n")
        return 0
    single = pricings[0] if provider is not None else None
    w = out.write
    w(f"workspace root {prep.root} ({prep.root_reason})\n")
    w(f"dry run: {options.kind} {options.instruction!r}\n")
    w(f"model: {model_line}\n")
    w(f"context budget: {flow.budget:,} tokens of a {window:,}-token window; jobs: {prep.jobs}\n")
    w(f"files: {len(files)}; tasks: {len(rows)} (split: {options.split})\n")
    w("verification (run in the sandbox after the coders, baseline first):\n")
    for line in describe_checks(checks, check_notes):
        w(f"  {line}\n")
    for number, ((planned, _plan), estimate) in enumerate(zip(rows, estimates, strict=True), 1):
        cost = ""
        if single is not None:
            found = single[2][number - 1].cost_range(single[1])
            cost = f"; {dollars(found[0])}-{dollars(found[1])}" if found else "; cost unknown"
        w(
            f"  {number}. {planned.title}\n"
            f"     files: {', '.join(planned.files)}\n"
            f"     ~{estimate.prompt_tokens:,} prompt tokens in {len(estimate.requests)} requests, "
            f"~{estimate.cached_share:.0%} expected from the prefix cache{cost}\n"
        )
    w(
        f"total: ~{total:,} prompt tokens in {requests} requests (first requests only: tool "
        "calls and review rounds add more)\n"
    )
    shared = plans[0].prefix_tokens if plans else 0
    share = cached / total if total else 0.0
    w(
        f"prefix cache: every request starts with the same {shared:,}-token prefix; after the "
        f"first requests, providers' prefix caches are expected to serve ~{share:.0%} of the "
        "prompt tokens\n"
    )
    for name, prices, ests in pricings:
        found = total_range(ests, prices)
        label = "cost" if provider is not None else f"cost at {name}"
        if found is None:
            w(f"{label}: unknown (no price for its models; set [pricing] in settings)\n")
        else:
            models = ", ".join(sorted({p.source for p in prices.values() if p}))
            w(f"{label}: {dollars(found[0])}-{dollars(found[1])} ({models} prices)\n")
    w(f"  {COST_COVERS}\n")
    if unfit:
        for number, request in unfit:
            w(
                f"does not fit: task {number}, {request.key}: {request.prompt_tokens:,} prompt "
                f"tokens, the {window:,}-token window allows {request.prompt_limit:,} with its "
                f"{request.reply_max:,}-token reply\n"
            )
    if first is not None:
        tiers = ", ".join(f"{n} {tier}" for tier, n in first["files_by_tier"].items())
        w(
            f"context: prefix {first['prefix_tokens']:,} tokens + tail {first['tail_tokens']:,}"
            f" of budget {first['budget']:,}; files: {tiers}\n"
        )
    for warning in prep.warnings:
        w(f"warning: {warning}\n")
    if options.verbose:
        shown = list(enumerate(zip(prep.tasks, snapshots, strict=True), 1))
        if options.task is not None:
            shown = [shown[options.task - 1]]
        for number, (planned, snapshot) in shown:
            w(f"\n===== context for task {number}: {planned.title} =====\n")
            w(snapshot.prefix)
            w("\n----- tail -----\n")
            w(snapshot.tail)
            w("\n")
    elif rows:
        w("(-v prints each task's context; -v --task N only task N's)\n")
    return 0


COST_COVERS = (
    "the estimate covers the first requests of each task (researcher, one coder per file, "
    f"reviewer): low = prefix served from cache and ~{LOW_REPLY_TOKENS}-token replies, high = no "
    "cache hits and every reply at its max_tokens; tool calls and review rounds cost more, "
    "budgets.max_tokens caps each task"
)


def _range_json(found: tuple[float, float] | None) -> dict[str, float] | None:
    return None if found is None else {"low": round(found[0], 6), "high": round(found[1], 6)}
