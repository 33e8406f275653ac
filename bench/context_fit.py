"""Context endurance, before and after, in one run: the same tasks on real stdlib source through
the same scripted model, once with this checkout and once with a baseline commit.

    python bench/context_fit.py [--baseline d79f470] [--provider openai|deepseek|moonshot]
                                 [--tasks 3] [--chars 4200000]

Each task has one focus file and changes two files (its focus and the next one), after two
whole-file reads; the reviewer reads once, rejects once, then approves. The tasks run one after
another on one SnapshotBuilder (the prefix is reused, as in a batch run). Prints per request: the
task, the role, prompt tokens (counted here, with the provider's tokenizer where one ships
offline), the max_tokens sent, whether prompt + reply fits the window, and the tokens of
full-file copies beyond the first; per task and in total the tokens sent; and the dry run's
estimate of each task's first requests (``plan_task``, cl100k) against the same requests as
sent, counted with cl100k. The baseline runs from a temporary git worktree of --baseline.
The scripted model answers at once: figures are token counts, not timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
PRESETS = {
    "openai": "OPENAI_API_KEY",
    "moonshot": "MOONSHOT_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
}


def make_workspace(root: Path, chars: int) -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    total, big = 0, []
    for path in sorted(stdlib.glob("*.py")) + sorted(stdlib.glob("*/*.py")):
        if "site-packages" in path.parts or "test" in path.parts:
            continue
        rel = path.relative_to(stdlib).as_posix()
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, root / rel)
        total += path.stat().st_size
        if 40_000 < path.stat().st_size < 120_000:
            big.append(rel)
        if total >= chars:
            break
    return big


def task_files(big: list[str], number: int) -> tuple[str, list[str], list[str]]:
    """Task ``number``: (its focus file, the files it changes, the files its researcher reads)."""
    focus = big[number]
    targets = [focus, big[(number + 1) % len(big)]]
    reads = [big[(number + 2) % len(big)], big[(number + 3) % len(big)]]
    return focus, targets, reads


def rules(big: list[str], texts: dict[str, str], tasks: int) -> list[dict[str, Any]]:
    """Per task: the researcher reads two whole files, then plans its two target files; each
    coder makes one edit; the reviewer reads one file, rejects once, then approves."""
    out: list[dict[str, Any]] = []
    coders: set[str] = set()
    for number in range(tasks):
        focus, targets, reads = task_files(big, number)
        mine = f"Files: {focus}\n"
        for path in reads:
            call = {"name": "read_file", "arguments": {"path": path}}
            out.append(
                {"match": {"has_tool": "submit_plan", "contains": mine},
                 "reply": {"tool_calls": [call]}, "times": 1}
            )  # fmt: skip
        plan_targets = [{"path": p, "instructions": "add a closing comment"} for p in targets]
        plan = {"name": "submit_plan", "arguments": {"targets": plan_targets, "notes": "n"}}
        out.append(
            {"match": {"has_tool": "submit_plan", "contains": mine},
             "reply": {"tool_calls": [plan]}}
        )  # fmt: skip
        read = {"name": "read_file", "arguments": {"path": targets[1]}}
        finding = {"path": focus, "message": "say why in the comment"}
        reject = {"name": "submit_review", "arguments": {"approved": False, "findings": [finding]}}
        for call in (read, reject):
            out.append(
                {"match": {"has_tool": "submit_review", "contains": mine},
                 "reply": {"tool_calls": [call]}, "times": 1}
            )  # fmt: skip
        coders.update(targets)
    approve = {"name": "submit_review", "arguments": {"approved": True, "findings": []}}
    out.append({"match": {"has_tool": "submit_review"}, "reply": {"tool_calls": [approve]}})
    for path in sorted(coders):
        last = "\n".join(texts[path].rstrip("\n").rsplit("\n", 4)[-4:]) + "\n"
        blocks = f"{path}\n<<<<<<< SEARCH\n{last}=======\n{last}# reviewed\n>>>>>>> REPLACE\n"
        out.append({"match": {"contains": f"# Target file: {path}"}, "reply": {"content": blocks}})
    return out


def worker(args: argparse.Namespace) -> None:
    """Runs inside the tree under test (baseline or this checkout): the tasks, then a JSON line."""
    from lsp_agent.agents.client import OpenAIChatClient
    from lsp_agent.agents.orchestrator import TaskSpec, plan_task, run_task
    from lsp_agent.agents.providers import resolve_provider
    from lsp_agent.config import BudgetSettings, ModelSettings, Settings
    from lsp_agent.context.snapshot import SnapshotBuilder, budget_for
    from lsp_agent.index.workspace import WorkspaceIndex

    big = json.loads(args.big)
    settings = Settings(
        model=ModelSettings(provider=args.provider, base_url=args.url),
        budgets=BudgetSettings(max_tokens=100_000_000),
    )
    config = resolve_provider(settings, {PRESETS[args.provider]: "sk-bench-0000"})
    index = WorkspaceIndex(Path(args.root), cache_path=None)
    index.build(jobs=1)
    builder = SnapshotBuilder(index, settings.context, state_dir=None)
    budget = budget_for(settings, config.model_for("coder"), kind="refactor", provider=config)
    client = OpenAIChatClient(config, max_retries=0, timeout=120)
    tasks = []

    async def go() -> None:
        try:
            for number in range(args.tasks):
                focus, _, _ = task_files(big, number)
                spec = TaskSpec(instruction="comment the modules", kind="refactor", files=[focus])
                snapshot = builder.build(
                    budget=budget, focus=spec.files, instruction=spec.instruction
                )
                dry = plan_task(spec, index=index, snapshot=snapshot)
                result = await run_task(
                    spec, index=index, snapshot=snapshot, client=client, settings=settings,
                    transcript_dir=Path(args.root).parent / f"transcripts-{os.getpid()}",
                )  # fmt: skip
                tasks.append(
                    {"focus": focus, "state": result.state, "error": result.error,
                     "dry_run": dict(dry.prompt_tokens)}
                )  # fmt: skip
        finally:
            await client.aclose()

    asyncio.run(go())
    print(json.dumps({"budget": budget, "window": config.context_window, "tasks": tasks}))


def _line_after(text: str, marker: str) -> str:
    for line in text.splitlines():
        if line.startswith(marker):
            return line.removeprefix(marker).strip()
    return ""


def analyse(
    requests: list[Any], texts: dict[str, str], window: int, count: Any, cl100k: Any
) -> list[dict[str, Any]]:
    caches: dict[Any, dict[str, int]] = {count: {}, cl100k: {}}

    def tokens(text: str, counter: Any = count) -> int:
        cache = caches[counter]
        if text not in cache:
            cache[text] = counter(text)
        return cache[text]

    def prompt_of(messages: list[dict[str, Any]], tools: Any, counter: Any) -> int:
        # As agents/fit.py counts a request: 8 template tokens a message, calls, tool schemas.
        prompt = sum(8 + tokens(str(m.get("content") or ""), counter) for m in messages)
        for m in messages:
            for call in m.get("tool_calls") or ():
                prompt += tokens(call["function"]["name"], counter)
                prompt += tokens(call["function"]["arguments"], counter)
        return prompt + (tokens(json.dumps(tools, sort_keys=True), counter) if tools else 0)

    rows = []
    for request in requests:
        messages = request.messages
        task_message = str(messages[2]["content"])
        role = task_message.split("\n", 1)[0].removeprefix("# Role: ")
        tools = request.body.get("tools")
        prompt = prompt_of(messages, tools, count)
        reply = int(request.body.get("max_tokens") or 0)
        contents = [str(m.get("content") or "") for m in messages]
        dup = 0
        for text in texts.values():
            copies = sum(c.count(text) for c in contents)
            dup += max(0, copies - 1) * tokens(text)
        rows.append(
            {"role": role, "task": _line_after(task_message, "Files: "),
             "target": _line_after(task_message, "# Target file: "),
             "first": len(messages) == 3, "prompt": prompt,
             "prompt_cl100k": prompt if count is cl100k else prompt_of(messages, tools, cl100k),
             "max_tokens": reply, "dup": dup, "fits": bool(reply) and prompt + reply <= window}
        )  # fmt: skip
    return rows


def run_one(tree: Path, args: argparse.Namespace, root: Path, big: list[str]) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from tests.support.scripted_model import ScriptedModel

    texts = {p: (root / p).read_text(encoding="utf-8") for p in big}
    with ScriptedModel(rules=rules(big, texts, args.tasks)) as model:
        env = {**os.environ, "PYTHONPATH": str(tree), "LSP_AGENT_CACHE_DIR": str(root.parent)}
        command = [
            sys.executable, str(HERE / "bench" / "context_fit.py"), "--worker",
            "--provider", args.provider, "--url", model.url, "--root", str(root),
            "--big", json.dumps(big), "--tasks", str(args.tasks),
        ]  # fmt: skip
        out = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"worker in {tree} failed:\n{out.stderr[-3000:]}")
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        requests = model.requests
    from lsp_agent.context.tokens import tokenizer_for

    name, count = tokenizer_for("deepseek" if args.provider == "deepseek" else "")
    _, cl100k = tokenizer_for("")
    summary["tokenizer"] = name
    summary["rows"] = analyse(requests, texts, summary["window"], count, cl100k)
    return summary


def report(label: str, summary: dict[str, Any]) -> dict[str, int]:
    rows = summary["rows"]
    states = ", ".join(
        f"{t['state']}{' ' + t['error'] if t['error'] else ''}" for t in summary["tasks"]
    )
    print(f"\n== {label}: {states}")
    print(
        f"window {summary['window']:,}; snapshot budget {summary['budget']:,}; "
        f"counted with {summary['tokenizer']}"
    )
    print(
        f"{'#':>3} {'task':<24}{'role':<11}{'prompt':>10}{'max_tokens':>12}{'dup tokens':>12}  fits"
    )
    for n, r in enumerate(rows, 1):
        print(
            f"{n:>3} {r['task'][:23]:<24}{r['role']:<11}{r['prompt']:>10,}{r['max_tokens']:>12,}"
            f"{r['dup']:>12,}  {'yes' if r['fits'] else 'NO'}"
        )
    print(
        f"{'task':<24}{'requests':>9}{'prompt sent':>13}{'per request':>13}{'dup':>10}{'unfit':>7}"
    )
    for task in summary["tasks"]:
        mine = [r for r in rows if r["task"] == task["focus"]]
        sent = sum(r["prompt"] for r in mine)
        print(
            f"{task['focus'][:23]:<24}{len(mine):>9}{sent:>13,}{sent // max(len(mine), 1):>13,}"
            f"{sum(r['dup'] for r in mine):>10,}{sum(not r['fits'] for r in mine):>7}"
        )
    sent = sum(r["prompt"] for r in rows)
    print(
        f"{'all':<24}{len(rows):>9}{sent:>13,}{sent // max(len(rows), 1):>13,}"
        f"{sum(r['dup'] for r in rows):>10,}{sum(not r['fits'] for r in rows):>7}"
    )
    print("dry run (first requests, cl100k) vs the same requests as sent (cl100k):")
    dry_total = sent_total = 0
    for task in summary["tasks"]:
        mine = [r for r in rows if r["task"] == task["focus"] and r["first"]]
        pairs = []
        for key, estimate in task["dry_run"].items():
            role, _, path = key.partition(":")
            match = next(
                (r for r in mine if r["role"] == role and (not path or r["target"] == path)), None
            )
            if match is not None:
                pairs.append((key, estimate, match["prompt_cl100k"]))
        dry, real = sum(p[1] for p in pairs), sum(p[2] for p in pairs)
        dry_total, sent_total = dry_total + dry, sent_total + real
        detail = ", ".join(f"{k} {e:,}/{a:,}" for k, e, a in pairs)
        print(f"  {task['focus']}: {dry:,} / {real:,} ({dry / max(real, 1):.3f}x): {detail}")
    print(f"  all: {dry_total:,} / {sent_total:,} ({dry_total / max(sent_total, 1):.3f}x)")
    return {"sent": sent, "dup": sum(r["dup"] for r in rows), "dry": dry_total, "real": sent_total}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--provider", default="openai", choices=sorted(PRESETS))
    parser.add_argument("--baseline", default="d79f470")
    parser.add_argument("--chars", type=int, default=4_200_000)
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--url", default="")
    parser.add_argument("--root", default="")
    parser.add_argument("--big", default="[]")
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    with tempfile.TemporaryDirectory(prefix="bench-context-") as tmp:
        base = Path(tmp)
        root = base / "ws"
        root.mkdir()
        big = make_workspace(root, args.chars)[: args.tasks + 3]
        baseline = base / "baseline"
        subprocess.run(
            ["git", "-C", str(HERE), "worktree", "add", "--detach", str(baseline), args.baseline],
            check=True, capture_output=True,
        )  # fmt: skip
        try:
            results = {
                f"baseline {args.baseline}": run_one(baseline, args, root, big),
                "this checkout": run_one(HERE, args, root, big),
            }
        finally:
            subprocess.run(
                ["git", "-C", str(HERE), "worktree", "remove", "--force", str(baseline)],
                capture_output=True,
            )  # fmt: skip
    print(
        f"provider {args.provider}; {args.tasks} tasks, each: 1 focus file, 2 target files, "
        "2 whole-file reads, 1 review round"
    )
    totals = {label: report(label, summary) for label, summary in results.items()}
    (before, old), (after, new) = totals.items()
    print(f"\n== side by side: {before} -> {after}")
    for key, what in (("sent", "prompt tokens sent"), ("dup", "duplicated full-file tokens")):
        ratio = f" ({new[key] / old[key]:.3f}x)" if old[key] else ""
        print(f"{what}: {old[key]:,} -> {new[key]:,}{ratio}")
    for label, figures in ((before, old), (after, new)):
        print(
            f"dry-run estimate / sent first requests, {label}: {figures['dry']:,} / "
            f"{figures['real']:,} = {figures['dry'] / max(figures['real'], 1):.3f}"
        )


if __name__ == "__main__":
    main()
