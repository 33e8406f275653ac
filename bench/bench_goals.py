"""Goal runs: orchestration overhead per step, and --jobs 1 vs --jobs N on independent steps.

    .venv/bin/python bench/bench_goals.py [--steps 10] [--latency-ms 200] [--jobs 1 4]
                                          [--overhead-steps 5] [--skip-stdlib]

1. Overhead at zero model latency on a stdlib-sized repository (the running interpreter's
   standard library, ~2,000 files, committed into a fresh git repository): the same chain of
   one-file steps as a goal run, reported per step (ledger record time) next to the pieces the
   goal machinery adds around a task — a worktree of the repository, a step commit, one ledger
   save, and (for --jobs > 1) a step's own worktree with its cold index.
2. A plan of independent one-file steps on a small repository with the scripted model at a
   fixed latency per request, run as the real CLI (in process) with each --jobs value.
Figures are printed; nothing is asserted.
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
sys.path.insert(0, str(REPO_ROOT))

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--overhead-steps", type=int, default=5)
    parser.add_argument("--skip-stdlib", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-goals-") as tmp:
        work = Path(tmp)
        os.environ["LSP_AGENT_CACHE_DIR"] = str(work / "cache")
        os.environ["XDG_CONFIG_HOME"] = str(work / "config")
        write_user_config(work / "config", FAST)
        cwd = os.getcwd()
        try:
            if not args.skip_stdlib:
                overhead(work, args.overhead_steps)
            parallel(work, args.steps, args.latency_ms, args.jobs)
        finally:
            os.chdir(cwd)


if __name__ == "__main__":
    main()
