"""A finished task's context, as a user asks for it: the snapshot it was given and, per request
sent, what went in (sections, files, tokens, duplicated tokens, expected cached share).

One shape for both surfaces: ``lspAgent/context {taskId}`` (handlers/requests.py) and
``lsp-agent tasks --manifest TASK_ID`` (commands/tasks.py) call ``task_context``; the CLI prints
``context_lines`` of it. Everything here is read from the journaled result (``requests``:
``fit.RequestRecord.to_json`` per request; ``snapshot``: ``Manifest.summary``), so it outlives
the server session that ran the task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SECTION_ORDER = ("system", "snapshot", "task", "tool_results", "assistant", "feedback", "tools")


def request_totals(requests: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    prompt = sum(int(r.get("prompt_tokens") or 0) for r in requests)
    cached = sum(int(r.get("cached_tokens") or 0) for r in requests)
    return {
        "requests": len(requests),
        "prompt_tokens": prompt,
        "largest_prompt_tokens": max(
            (int(r.get("prompt_tokens") or 0) for r in requests), default=0
        ),
        "cached_tokens": cached,
        "expected_cached_share": round(cached / prompt, 4) if prompt else 0.0,
        "duplicated_tokens": sum(int(r.get("duplicated_tokens") or 0) for r in requests),
        "prefix_cut_tokens": sum(int(r.get("prefix_cut_tokens") or 0) for r in requests),
    }


def task_context(
    result: Mapping[str, Any] | None, live_manifest: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The snapshot's manifest (the full one while the session that built it lives, else the
    journaled summary) with ``requests`` and their ``totals``."""
    result = result or {}
    snapshot = live_manifest or result.get("snapshot") or {}
    requests = list(result.get("requests") or [])
    return {**snapshot, "requests": requests, "totals": request_totals(requests)}


def _share(value: float) -> str:
    return f"{value * 100:.0f}%"


def context_lines(data: Mapping[str, Any]) -> list[str]:
    """``task_context`` as text: the snapshot, then one block per request."""
    lines: list[str] = []
    if "budget" in data:
        state = "rebuilt" if data.get("rebuilt") else "reused"
        total, budget = int(data.get("total_tokens") or 0), int(data["budget"])
        prefix, tail_tokens = int(data.get("prefix_tokens") or 0), int(data.get("tail_tokens") or 0)
        digest = str(data.get("prefix_hash") or "")[:12]
        lines.append(
            f"snapshot: {total:,} of a {budget:,}-token budget (prefix {prefix:,}, {state}, "
            f"sha256 {digest}; tail {tail_tokens:,})"
        )
        tiers = data.get("tiers")
        if isinstance(tiers, Mapping) and tiers:
            lines.append(
                "  prefix files: "
                + ", ".join(
                    f"{row['files']:,} {tier} ({row['tokens']:,} tokens)"
                    for tier, row in tiers.items()
                )
            )
        tail = data.get("tail")
        if tail is None:  # the live manifest: every file
            tail = [f for f in data.get("files") or [] if f.get("section") == "tail"]
        for entry in tail:
            lines.append(
                f"  tail: {entry['path']} {entry['tier']} {int(entry['tokens']):,} tokens"
                f" ({entry.get('reason') or ''})"
            )
        lines.extend(f"  note: {note}" for note in data.get("notes") or [])
    else:
        lines.append("snapshot: not recorded (the task ended before it had one)")
    requests = data.get("requests") or []
    totals = data.get("totals") or request_totals(requests)
    lines.append(
        f"requests: {totals['requests']}; prompt tokens {totals['prompt_tokens']:,} (largest "
        f"{totals['largest_prompt_tokens']:,}); expected cached "
        f"{_share(totals['expected_cached_share'])}; duplicated full-file tokens "
        f"{totals['duplicated_tokens']:,}"
    )
    for number, record in enumerate(requests, 1):
        lines.append(
            f"  #{number} {record.get('agent')} ({record.get('role')}) step {record.get('step')}: "
            f"{int(record.get('prompt_tokens') or 0):,} prompt tokens of "
            f"{int(record.get('limit') or 0):,} allowed ({record.get('tokenizer')}), max_tokens "
            f"{int(record.get('max_tokens') or 0):,}, window {int(record.get('window') or 0):,}; "
            f"expected cached {_share(float(record.get('expected_cached_share') or 0))}"
        )
        sections = record.get("sections") or {}
        shown = [f"{name} {int(sections[name]):,}" for name in SECTION_ORDER if sections.get(name)]
        lines.append("     sections: " + (", ".join(shown) or "none"))
        if record.get("files"):
            lines.append("     files in full: " + ", ".join(record["files"]))
        if record.get("duplicated_tokens"):
            lines.append(
                f"     duplicated: {int(record['duplicated_tokens']):,} tokens ("
                + ", ".join(record.get("duplicated_files") or [])
                + ")"
            )
        if record.get("elided_results"):
            lines.append(
                f"     elided: {record['elided_results']} tool results "
                f"({int(record.get('elided_tokens') or 0):,} tokens)"
            )
        if record.get("prefix_cut_tokens"):
            lines.append(f"     snapshot cut: {int(record['prefix_cut_tokens']):,} tokens")
    return lines
