"""Goal runs: orchestration overhead per step, and --jobs 1 vs --jobs N on independent steps.

    .venv/bin/python bench/bench_goals.py [--steps 10] [--latency-ms 200] [--jobs 1 4]
                                          [--overhead-steps 5] [--skip-stdlib]
                                          [--baseline COMMIT]

1. Overhead at zero model latency on a stdlib-sized repository (the running interpreter's
   standard library, ~2,000 files, committed into a fresh git repository): the same chain of
   one-file steps as a goal run, reported per step (ledger record time) next to the pieces the
   goal machinery adds around a task — a worktree of the repository, a step commit, one ledger
   save, and (for --jobs > 1) a step's own worktree with its cold index.
2. A plan of independent one-file steps on a small repository with the scripted model at a
   fixed latency per request, run as the real CLI (in process) with each --jobs value.
3. With --baseline COMMIT: the same zero-latency chain (each step adds one file, as goal steps
   do) on two identical fresh stdlib repositories, run by a fresh process of COMMIT's code (a
   git worktree of it) and of this checkout's, per-step seconds side by side.
Figures are printed; nothing is asserted. The machine is shared: figures are noisy.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# --baseline runs this file again with another checkout's code first on the path.
SOURCE = Path(os.environ.get("LSP_AGENT_BENCH_SOURCE") or REPO_ROOT)
sys.path.insert(0, str(SOURCE))

from lsp_agent import cli  # noqa: E402
from lsp_agent.config import Settings  # noqa: E402
from lsp_agent.goals import git  # noqa: E402
from lsp_agent.goals.ledger import Ledger  # noqa: E402
from lsp_agent.goals.plan import validate_steps  # noqa: E402
from lsp_agent.goals.steps import open_tree  # noqa: E402
from lsp_agent.goals.store import RunStore, journal_for  # noqa: E402
from tests.goals.support import FAST, GoalModel, chain, write_user_config  # noqa: E402
from tests.support.scripted_model import ScriptedModel  # noqa: E402


def sh(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def commit_all(root: Path) -> None:
    sh(root, "init", "-q", "-b", "main")
    sh(root, "add", "-A")
    sh(root, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "init")


def stdlib_repo(dest: Path) -> Path:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip = shutil.ignore_patterns("site-packages", "__pycache__", "*.pyc")
    shutil.copytree(stdlib, dest, ignore=skip, symlinks=True)
    commit_all(dest)
    return dest


def small_repo(dest: Path) -> Path:
    (dest / "pkg").mkdir(parents=True)
    (dest / "pkg" / "__init__.py").write_text('"""bench"""\n')
    commit_all(dest)
    return dest


def goal(root: Path, argv: list[str]) -> tuple[dict, float]:
    os.chdir(root)
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["goal", *argv, "--json"])
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"goal run failed ({code}):\n{err.getvalue()[-2000:]}")
    return json.loads(out.getvalue()), wall


def bare_tasks(repo: Path, steps: int) -> list[float]:
    """The baseline: each step's task run by run_task on an index of the repository, changes
    kept in memory (what a step costs without the goal machinery around it)."""
    import asyncio

    from lsp_agent.agents.client import OpenAIChatClient
    from lsp_agent.agents.orchestrator import TaskSpec, run_task
    from lsp_agent.agents.providers import resolve_provider
    from lsp_agent.config import load_settings
    from lsp_agent.context.snapshot import budget_for
    from lsp_agent.goals.plan import Step
    from lsp_agent.goals.steps import step_instruction

    settings, _ = load_settings(repo)
    tree = open_tree(repo, "", settings, own=False, state_dir=repo.parent / "bare-state")
    budget = budget_for(settings, None)

    async def go() -> list[float]:
        client = OpenAIChatClient(resolve_provider(settings), max_retries=1)
        times = []
        try:
            for raw in chain(steps, files=lambda n: f"goalbench/bare_{n:02d}.py"):
                step = Step.from_json(raw)
                started = time.perf_counter()
                snapshot = await asyncio.to_thread(tree.snapshot, budget, step)
                spec = TaskSpec(step_instruction(step), files=list(step.files), title=step.title)
                result = await run_task(
                    spec, index=tree.index, snapshot=snapshot, client=client, settings=settings
                )
                assert result.state == "succeeded", result.error
                times.append(time.perf_counter() - started)
        finally:
            await client.aclose()
        return times

    return asyncio.run(go())


def timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def overhead(work: Path, steps: int) -> None:
    repo = stdlib_repo(work / "stdlib")
    files = sum(1 for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts)
    print(f"stdlib repository: {files} files")
    plan = chain(steps, files=lambda n: f"goalbench/step_{n:02d}.py")
    with ScriptedModel(hook=GoalModel(plan)) as model:
        os.environ["LSP_AGENT_BASE_URL"] = model.url
        report, wall = goal(repo, ["Grow a package"])
        bare = bare_tasks(repo, steps)
    seconds = [s["seconds"] for s in report["steps"]]
    print(
        f"goal run, {steps} steps at 0 ms model latency: wall {wall:.2f} s (index, plan, steps); "
        f"per step median {statistics.median(seconds) * 1000:.0f} ms "
        f"(min {min(seconds) * 1000:.0f}, max {max(seconds) * 1000:.0f}); the same tasks through "
        f"run_task alone (snapshot + agents, no worktree/commit/ledger/journal): median "
        f"{statistics.median(bare) * 1000:.0f} ms"
    )

    # The pieces the goal machinery adds around a task, on the same repository.
    trees = work / "trees"
    counter = iter(range(1000))

    def worktree() -> None:
        dest = trees / f"w{next(counter)}"
        git.add_worktree(repo, dest, "HEAD")
        git.remove_worktree(repo, dest)

    add_remove = timed(worktree, 3)
    tree = trees / "commit"
    git.add_worktree(repo, tree, "HEAD")
    n = iter(range(1000))

    def commit() -> None:
        (tree / f"bench_{next(n)}.py").write_text("X = 1\n")
        git.commit_step(tree, run_id="g-bench", key="k", title="bench", summary="one file")

    commit_s = timed(commit)
    steps_json = validate_steps(chain(20))
    ledger = Ledger("g-bench", "bench", str(repo), "lsp-agent/g-bench", "HEAD", plan=steps_json)
    journal = journal_for(repo)
    store = RunStore(journal)
    store.create(ledger)
    save_s = timed(lambda: store.save(ledger), 20)
    journal.close()

    def own_tree() -> None:
        dest = trees / f"own{next(counter)}"
        git.add_worktree(repo, dest, "HEAD")
        open_tree(dest, "", Settings(), own=True, state_dir=None)
        git.remove_worktree(repo, dest)

    own_s = timed(own_tree, 2)
    git.remove_worktree(repo, tree)
    print(
        f"pieces (median): worktree add+remove {add_remove * 1000:.0f} ms, step commit "
        f"{commit_s * 1000:.0f} ms, ledger save {save_s * 1000:.1f} ms; a --jobs>1 step's own "
        f"worktree + cold index {own_s * 1000:.0f} ms"
    )


def parallel(work: Path, steps: int, latency_ms: int, jobs: list[int]) -> None:
    plan = chain(steps)
    for step in plan:
        step["depends_on"] = []
    results = {}
    for count in jobs:
        repo = small_repo(work / f"small-{count}")
        with ScriptedModel(hook=GoalModel(plan), latency_ms=latency_ms) as model:
            os.environ["LSP_AGENT_BASE_URL"] = model.url
            report, wall = goal(repo, ["Independent steps", "--jobs", str(count)])
            overlap = model.max_overlap()
        results[count] = wall
        print(
            f"{steps} independent steps, {latency_ms} ms per request, --jobs {count}: "
            f"{wall:.2f} s wall, {len(report['steps'])} steps done, max requests in flight "
            f"{overlap}"
        )
    base = results[jobs[0]]
    for count in jobs[1:]:
        print(f"--jobs {count} vs --jobs {jobs[0]}: {results[count] / base:.2f}x the wall time")


def chain_seconds(repo: Path, steps: int) -> None:
    """One zero-latency goal run of ``steps`` file-adding steps on ``repo``; prints the
    per-step seconds as JSON (the --baseline subprocess, run with either checkout's code)."""
    plan = chain(steps, files=lambda n: f"goalbench/step_{n:02d}.py")
    with ScriptedModel(hook=GoalModel(plan)) as model:
        os.environ["LSP_AGENT_BASE_URL"] = model.url
        report, wall = goal(repo, ["Grow a package"])
    seconds = [s["seconds"] for s in report["steps"]]
    print(json.dumps({"wall": wall, "steps": seconds}))


def versus(work: Path, steps: int, baseline: str) -> None:
    tree = work / "baseline-src"
    sh(REPO_ROOT, "worktree", "add", "--detach", str(tree), baseline)
    try:
        rows = {}
        for name, source in ((f"baseline {baseline[:10]}", tree), ("this checkout", REPO_ROOT)):
            repo = stdlib_repo(work / f"versus-{len(rows)}")
            env = dict(
                os.environ,
                LSP_AGENT_BENCH_SOURCE=str(source),
                LSP_AGENT_CACHE_DIR=str(work / f"cache-{len(rows)}"),
            )
            out = subprocess.run(
                [sys.executable, __file__, "--chain-seconds", str(repo), "--steps", str(steps)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rows[name] = json.loads(out.strip().splitlines()[-1])
    finally:
        sh(REPO_ROOT, "worktree", "remove", "--force", str(tree))
    print(f"{steps} zero-latency steps, each adding a file, on a fresh stdlib repository:")
    medians = {}
    for name, row in rows.items():
        per = row["steps"]
        medians[name] = statistics.median(per)
        print(
            f"  {name:24s} per step median {medians[name] * 1000:6.0f} ms "
            f"(min {min(per) * 1000:.0f}, max {max(per) * 1000:.0f}); run wall {row['wall']:.1f} s"
        )
    (before, after) = medians.values()
    print(f"  this checkout / baseline per step: {after / before:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--overhead-steps", type=int, default=5)
    parser.add_argument("--skip-stdlib", action="store_true")
    parser.add_argument("--baseline", help="also run the chain with this commit's code")
    parser.add_argument("--chain-seconds", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.chain_seconds is not None:  # the --baseline subprocess (environment set up)
        chain_seconds(args.chain_seconds, args.steps)
        return
    with tempfile.TemporaryDirectory(prefix="bench-goals-") as tmp:
        work = Path(tmp)
        os.environ["LSP_AGENT_CACHE_DIR"] = str(work / "cache")
        os.environ["XDG_CONFIG_HOME"] = str(work / "config")
        # Orchestration only: the stdlib copy has a test/ folder, and running its tests in the
        # sandbox every step would be most of what is measured.
        write_user_config(work / "config", FAST + "[verify]\nenabled = false\n")
        cwd = os.getcwd()
        try:
            if args.baseline:
                versus(work, args.overhead_steps, args.baseline)
            if not args.skip_stdlib:
                overhead(work, args.overhead_steps)
            parallel(work, args.steps, args.latency_ms, args.jobs)
        finally:
            os.chdir(cwd)


if __name__ == "__main__":
    main()
