"""The end of a run as people read it: per step (commit, verification, tokens, time) and the
totals; JSON for ``--json`` and the editor, text for the terminal."""

from __future__ import annotations

from typing import Any

from lsp_agent.goals.ledger import Ledger


def report_json(ledger: Ledger) -> dict[str, Any]:
    usage = ledger.usage
    return {
        "runId": ledger.run_id,
        "goal": ledger.goal,
        "state": ledger.state,
        "reason": ledger.reason,
        "branch": ledger.branch,
        "baseCommit": ledger.base_commit,
        "revisions": ledger.revision,
        "steps": [
            {
                "key": step.key,
                "title": step.title,
                "state": "done" if ledger.record(step.key) else "pending",
                "files": list(step.files),
                "dependsOn": list(step.depends_on),
                "acceptance": step.acceptance.to_text(),
                **_record(ledger, step.key),
            }
            for step in ledger.plan
        ],
        "failures": [
            {"key": f["key"], "error": f["error"], "taskId": f.get("task_id")}
            for f in ledger.failures
        ],
        "tokens": {
            "prompt": usage.get("prompt_tokens", 0),
            "completion": usage.get("completion_tokens", 0),
            "cached": usage.get("cached_tokens", 0),
            "requests": usage.get("requests", 0),
        },
        "cost": None if ledger.cost is None else round(ledger.cost, 6),
        "seconds": round(ledger.seconds, 3),
        "budgets": ledger.budgets,
    }


def _record(ledger: Ledger, key: str) -> dict[str, Any]:
    record = ledger.record(key)
    if record is None:
        return {}
    return {
        "commit": record.commit,
        "summary": record.summary,
        "diffStat": record.diff_stat,
        "changed": record.files,
        "verification": record.verification,
        "taskId": record.task_id,
        "attempts": record.attempts,
        "tokens": record.usage.get("prompt_tokens", 0) + record.usage.get("completion_tokens", 0),
        "seconds": record.seconds,
    }


def report_text(ledger: Ledger) -> str:
    usage = ledger.usage
    reason = f" ({ledger.reason})" if ledger.reason else ""
    lines = [
        f"goal run {ledger.run_id}: {ledger.state}{reason}",
        f"goal: {ledger.goal}",
        f"branch: {ledger.branch} (from {ledger.base_commit[:10]})",
    ]
    for number, step in enumerate(ledger.plan, 1):
        record = ledger.record(step.key)
        if record is None:
            lines.append(f"  {number:>2}. [pending] {step.key} {step.title}")
            continue
        verified = record.verification.get("result", "none")
        lines.append(
            f"  {number:>2}. [done] {step.key} {step.title} — {record.commit[:10]}, "
            f"{record.diff_stat or 'no file changed'}; verification: {verified}; "
            f"{record.seconds:.1f} s"
        )
    tokens = usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
    cost = "cost unknown" if ledger.cost is None else f"${ledger.cost:.4f}"
    lines.append(
        f"{len(ledger.done)}/{len(ledger.plan)} steps, {ledger.revision} revision(s), "
        f"{len(ledger.failures)} failed attempt(s), {tokens:,} tokens "
        f"({usage.get('cached_tokens', 0):,} cached), {cost}, {ledger.seconds:.1f} s"
    )
    return "\n".join(lines) + "\n"
