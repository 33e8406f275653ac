"""Context endurance, before and after, in one run: the same multi-file task on real stdlib source
through the same scripted model, once with this checkout and once with a baseline commit.

    python bench/context_fit.py [--baseline 3a576ea] [--provider openai|deepseek|moonshot]

Prints per request: the role, prompt tokens (counted here, with the provider's tokenizer where
one ships offline), the max_tokens sent, whether prompt + reply fits the window, and the tokens of
full-file copies beyond the first. Also the dry run's estimate of the first requests against the
tokens the run actually sent. The baseline runs from a temporary git worktree of --baseline.
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


def rules(big: list[str], texts: dict[str, str]) -> list[dict[str, Any]]:
    """Researcher: four whole-file reads, then a plan for three files (the first is the task's
    focus file). Coders: one edit each. Reviewer: one read, one rejection, then approval."""
    out: list[dict[str, Any]] = []
    for path in big[:4]:
        call = {"name": "read_file", "arguments": {"path": path}}
        out.append(
            {"match": {"has_tool": "submit_plan"}, "reply": {"tool_calls": [call]}, "times": 1}
        )
    targets = [{"path": p, "instructions": "add a closing comment"} for p in big[:3]]
    plan = {"name": "submit_plan", "arguments": {"targets": targets, "notes": "n"}}
    out.append({"match": {"has_tool": "submit_plan"}, "reply": {"tool_calls": [plan]}})
    read = {"name": "read_file", "arguments": {"path": big[1]}}
    out.append(
        {"match": {"has_tool": "submit_review"}, "reply": {"tool_calls": [read]}, "times": 1}
    )
    finding = {"path": big[0], "message": "say why in the comment"}
    reject = {"name": "submit_review", "arguments": {"approved": False, "findings": [finding]}}
    out.append(
        {"match": {"has_tool": "submit_review"}, "reply": {"tool_calls": [reject]}, "times": 1}
    )
    approve = {"name": "submit_review", "arguments": {"approved": True, "findings": []}}
    out.append({"match": {"has_tool": "submit_review"}, "reply": {"tool_calls": [approve]}})
    for path in big[:3]:
        last = "\n".join(texts[path].rstrip("\n").rsplit("\n", 4)[-4:]) + "\n"
        blocks = f"{path}\n<<<<<<< SEARCH\n{last}=======\n{last}# reviewed\n>>>>>>> REPLACE\n"
        out.append({"match": {"contains": f"# Target file: {path}"}, "reply": {"content": blocks}})
    return out


def worker(args: argparse.Namespace) -> None:
    """Runs inside the tree under test (baseline or this checkout): one task, then a JSON line."""
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
    spec = TaskSpec(instruction="comment the modules", kind="refactor", files=[big[0]])
    try:
        budget = budget_for(settings, config.model_for("coder"), kind="refactor", provider=config)
    except TypeError:  # the baseline's budget_for(settings, model_name)
        budget = budget_for(settings, config.model_for("coder"))
    snapshot = SnapshotBuilder(index, settings.context, state_dir=None).build(
        budget=budget, focus=spec.files, instruction=spec.instruction
    )
    dry = plan_task(spec, index=index, snapshot=snapshot)
    client = OpenAIChatClient(config, max_retries=0, timeout=120)

    async def go() -> Any:
        try:
            return await run_task(
                spec, index=index, snapshot=snapshot, client=client, settings=settings,
                transcript_dir=Path(args.root).parent / f"transcripts-{os.getpid()}",
            )  # fmt: skip
        finally:
            await client.aclose()

    result = asyncio.run(go())
    print(
        json.dumps(
            {
                "state": result.state,
                "error": result.error,
                "budget": budget,
                "window": config.context_window,
                "dry_run": dict(dry.prompt_tokens),
                "dry_total": dry.total_prompt_tokens,
            }
        )
    )


def analyse(
    requests: list[Any], texts: dict[str, str], window: int, count: Any
) -> list[dict[str, Any]]:
    cache: dict[str, int] = {}

    def tokens(text: str) -> int:
        if text not in cache:
            cache[text] = count(text)
        return cache[text]

    rows = []
    for request in requests:
        messages = request.messages
        role = str(messages[2]["content"]).split("\n", 1)[0].removeprefix("# Role: ")
        prompt = sum(8 + tokens(str(m.get("content") or "")) for m in messages)
        for m in messages:
            for call in m.get("tool_calls") or ():
                prompt += tokens(call["function"]["arguments"])
        tools = request.body.get("tools")
        prompt += tokens(json.dumps(tools, sort_keys=True)) if tools else 0
        reply = int(request.body.get("max_tokens") or 0)
        contents = [str(m.get("content") or "") for m in messages]
        dup = 0
        for text in texts.values():
            copies = sum(c.count(text) for c in contents)
            dup += max(0, copies - 1) * tokens(text)
        rows.append(
            {"role": role, "prompt": prompt, "max_tokens": reply, "dup": dup,
             "fits": bool(reply) and prompt + reply <= window}
        )  # fmt: skip
    return rows


def run_one(tree: Path, args: argparse.Namespace, root: Path, big: list[str]) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from tests.support.scripted_model import ScriptedModel

    texts = {p: (root / p).read_text(encoding="utf-8") for p in big[:4]}
    with ScriptedModel(rules=rules(big, texts)) as model:
        env = {**os.environ, "PYTHONPATH": str(tree), "LSP_AGENT_CACHE_DIR": str(root.parent)}
        command = [
            sys.executable, str(HERE / "bench" / "context_fit.py"), "--worker",
            "--provider", args.provider, "--url", model.url, "--root", str(root),
            "--big", json.dumps(big),
        ]  # fmt: skip
        out = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"worker in {tree} failed:\n{out.stderr[-3000:]}")
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        requests = model.requests
    from lsp_agent.agents import sizing
    from lsp_agent.context.tokens import tokenizer_for

    name, count = tokenizer_for("deepseek" if args.provider == "deepseek" else "")
    summary["tokenizer"] = name
    summary["rows"] = analyse(requests, texts, summary["window"], count)
    del sizing
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--provider", default="openai", choices=sorted(PRESETS))
    parser.add_argument("--baseline", default="3a576ea")
    parser.add_argument("--chars", type=int, default=4_200_000)
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
        big = make_workspace(root, args.chars)
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
    print(f"provider {args.provider}; task: 3 target files (1 focus), 4 reads, 1 review round")
    for label, summary in results.items():
        rows = summary["rows"]
        sent = sum(r["prompt"] for r in rows)
        first = {r["role"]: r["prompt"] for r in reversed(rows)}
        print(f"\n== {label}: {summary['state']} {summary['error'] or ''}".rstrip())
        print(
            f"window {summary['window']:,}; snapshot budget {summary['budget']:,}; "
            f"counted with {summary['tokenizer']}"
        )
        print(f"{'#':>3} {'role':<11}{'prompt':>10}{'max_tokens':>12}{'dup tokens':>12}  fits")
        for n, r in enumerate(rows, 1):
            print(
                f"{n:>3} {r['role']:<11}{r['prompt']:>10,}{r['max_tokens']:>12,}"
                f"{r['dup']:>12,}  {'yes' if r['fits'] else 'NO'}"
            )
        print(
            f"requests {len(rows)}; prompt tokens sent {sent:,}; "
            f"duplicated {sum(r['dup'] for r in rows):,}; "
            f"not fitting {sum(not r['fits'] for r in rows)}"
        )
        print(
            f"dry run estimate (first requests) {summary['dry_total']:,} vs sent first requests "
            f"{sum(first.values()):,} ({', '.join(f'{k} {v:,}' for k, v in first.items())})"
        )


if __name__ == "__main__":
    main()
