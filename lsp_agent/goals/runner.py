"""The goal run: plan, then run the steps (in parallel where they allow it), settle each one in
plan order, revise the plan after a failure, stop on a budget or when stuck; survive restarts.

State lives in the ledger (journaled after every change) and on the run's branch (one commit per
finished step). A restart trusts the branch first: a step committed there is done even if the
process died before the ledger said so, and the tree is reset to its last commit, so a step in
flight is the most a crash can lose.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsp_agent.agents.loop import LimitsExceeded, LoopDetected
from lsp_agent.agents.usage import ModelError
from lsp_agent.agents.verification import resolve_checks, summary_line
from lsp_agent.config import Settings
from lsp_agent.goals import git
from lsp_agent.goals.budget import Pricing, RunBudget, add_usage, exhausted, step_limits
from lsp_agent.goals.ledger import (
    CANCELLED,
    FAILED,
    PAUSED,
    PLANNED,
    RUNNING,
    STOPPED_BUDGET,
    STUCK,
    SUCCEEDED,
    Ledger,
    StepRecord,
)
from lsp_agent.goals.plan import Step, ready_steps
from lsp_agent.goals.planner import plan_goal
from lsp_agent.goals.steps import Attempt, StepTree, open_tree, run_step
from lsp_agent.goals.store import RunStore, run_dir
from lsp_agent.tasks.model import Task
from lsp_agent.tasks.runner import TaskRunner

log = logging.getLogger(__name__)

OUTAGE_KINDS = ("server", "connection", "timeout", "rate_limit")
MAX_OUTAGE_BACKOFF_S = 300.0
MAX_CONFLICT_RERUNS = 3
_OUTAGE = re.compile(r"^model error \((" + "|".join(OUTAGE_KINDS) + r")\)")
Notify = Callable[[str], None]


class _Stop(Exception):
    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state, self.reason = state, reason


def failure_signature(error: str) -> str:
    """Errors that differ only in numbers, ids or spacing are the same failure."""
    text = re.sub(r"\b[0-9a-f]{7,40}\b", "#", error.lower())
    text = re.sub(r"\d+(\.\d+)?", "#", text)
    return " ".join(text.split())


class GoalRun:
    def __init__(
        self,
        ledger: Ledger,
        *,
        store: RunStore,
        client: Any,
        settings: Settings,
        provider: Any = None,
        jobs: int = 1,
        plan_only: bool = False,
        notify: Notify | None = None,
        on_task: Callable[[Task], None] | None = None,
        snapshot_budget: int | None = None,
    ) -> None:
        self.ledger, self.store, self.client, self.settings = ledger, store, client, settings
        self.jobs, self.plan_only = max(1, jobs), plan_only
        self.notify = notify or (lambda message: log.info("%s", message))
        self.pricing = Pricing(settings, provider)
        self.budget = RunBudget.from_json(ledger.budgets)
        self.dir = run_dir(Path(ledger.root), ledger.run_id)
        self.runner = TaskRunner(concurrency=self.jobs, journal=store.journal, on_update=on_task)
        self._on_task = on_task
        self._budget_given = snapshot_budget is not None
        if snapshot_budget is None:
            from lsp_agent.context.snapshot import budget_for

            model = provider.model_for("coder") if provider is not None else None
            # A goal run may use the whole window (sizing.KIND_BUDGETS["goal"]: the ceiling).
            snapshot_budget = budget_for(settings, model or None, kind="goal", provider=provider)
        self.snapshot_budget = snapshot_budget
        self.tree: StepTree | None = None
        self.repo = Path(ledger.root)
        self.prefix = ""
        self._session_start = time.monotonic()
        self._seconds_before = ledger.seconds
        self._outage_waited = 0.0
        self._conflicts: dict[str, int] = {}
        self._own_trees = 0

    # -- the run --------------------------------------------------------------------------
    async def run(self) -> Ledger:
        ledger = self.ledger
        try:
            if not self._budget_given and getattr(self.client, "learn_window", None) is not None:
                # A local server's window is known only once asked (/v1/models): learn it before
                # sizing, as a task does (the one rule, orchestrator.learned_budget).
                from lsp_agent.agents.orchestrator import learned_budget

                self.snapshot_budget = await learned_budget(self.settings, self.client, kind="goal")
            await self._prepare()
            if not ledger.plan:
                await self._plan(None)
            if self.plan_only:
                raise _Stop(PLANNED, f"planned {len(ledger.plan)} steps; run them with --resume")
            ledger.state, ledger.reason = RUNNING, ""
            self._save()
            await self._loop()
            raise _Stop(SUCCEEDED, f"all {len(ledger.done)} steps finished")
        except _Stop as stop:
            ledger.state, ledger.reason = stop.state, stop.reason
        except asyncio.CancelledError:
            ledger.state, ledger.reason = CANCELLED, "cancelled: resume with --resume"
            self._save()
            await self.runner.shutdown()
            raise
        except git.GitError as exc:
            ledger.state, ledger.reason = FAILED, str(exc)
        except Exception as exc:  # the run must end in a state, not a traceback
            log.exception("goal run %s failed", ledger.run_id)
            ledger.state, ledger.reason = FAILED, f"internal error: {exc!r}"
        finally:
            await asyncio.to_thread(self._remove_own_trees)
        self._save()
        self.notify(f"run {ledger.run_id}: {ledger.state}: {ledger.reason}")
        return ledger

    async def _prepare(self) -> None:
        """The run's tree on its branch, at its last commit; stale step worktrees removed; the
        ledger caught up with the branch."""
        ledger = self.ledger
        self.repo, self.prefix = await asyncio.to_thread(git.repo_of, Path(ledger.root))
        top = self.dir / "tree"

        def prepare() -> StepTree:
            if (top / ".git").exists():
                git.clean(top)
            else:
                if top.exists():
                    git.remove_worktree(self.repo, top)
                git.prune_worktrees(self.repo)
                git.add_worktree(self.repo, top, ledger.base_commit, branch=ledger.branch)
            self._remove_own_trees()
            return open_tree(top, self.prefix, self.settings, own=False, state_dir=self.dir)

        self.tree = await asyncio.to_thread(prepare)
        recovered = await asyncio.to_thread(self._recover)
        if recovered:
            self.notify(f"recovered from the branch: {', '.join(recovered)}")
            self._save()

    def _recover(self) -> list[str]:
        assert self.tree is not None
        commits = git.step_commits(self.tree.top, self.ledger.base_commit)
        found = []
        for key, commit in commits.items():
            step = self.ledger.step(key)
            if step is None or self.ledger.record(key) is not None:
                continue
            title, body = git.message_of(self.tree.top, commit)
            self.ledger.done.append(
                StepRecord(
                    key=key,
                    title=title,
                    commit=commit,
                    summary=body,
                    diff_stat=git.diff_stat(self.tree.top, f"{commit}^", commit),
                    files=git.changed_files(self.tree.top, f"{commit}^", commit),
                    verification={"result": "committed before the restart", "by": "branch"},
                    task_id="",
                )
            )
            found.append(key)
        return found

    async def _loop(self) -> None:
        ledger = self.ledger
        running: dict[asyncio.Task[Attempt], Step] = {}
        settled_wait: list[Attempt] = []
        revise: dict[str, str] | None = None
        stop: _Stop | None = None
        try:
            while True:
                self._tick()
                if stop is None and revise is None:
                    reason = exhausted(self.budget, self.pricing, ledger.usage, ledger.seconds)
                    if reason:
                        stop = _Stop(STOPPED_BUDGET, reason)
                if not running and not settled_wait:
                    if stop is not None:
                        raise stop
                    if revise is not None:
                        await self._plan(revise)
                        revise = None
                        continue
                    if not ledger.pending():
                        return
                busy = [*running.values(), *(a.step for a in settled_wait)]
                if stop is None and revise is None:
                    taken = {s.key for s in busy}
                    pending = [s for s in ledger.pending() if s.key not in taken]
                    for step in ready_steps(
                        pending, ledger.done_keys, busy, self.jobs - len(running)
                    ):
                        # With --jobs > 1 every step has its own worktree: the run's tree only
                        # ever changes by a merge, never under a step that is reading it.
                        handle = asyncio.create_task(self._start(step, parallel=self.jobs > 1))
                        running[handle] = step
                        busy.append(step)
                    if not running and not settled_wait:
                        blocked = ", ".join(s.key for s in ledger.pending())
                        raise _Stop(STUCK, f"no step can start: {blocked} wait on steps not done")
                if running:
                    done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for handle in done:
                        running.pop(handle)
                        settled_wait.append(handle.result())
                order = {s.key: n for n, s in enumerate(ledger.plan)}
                settled_wait.sort(key=lambda a: order.get(a.step.key, len(order)))
                first_running = min((order.get(s.key, 0) for s in running.values()), default=None)
                while settled_wait:
                    attempt = settled_wait[0]
                    if first_running is not None and order.get(attempt.step.key, 0) > first_running:
                        break  # merged in plan order: an earlier step is still running
                    settled_wait.pop(0)
                    outcome = await self._settle(attempt)
                    if isinstance(outcome, _Stop):
                        stop = stop or outcome
                    elif outcome is not None:
                        revise = revise or outcome
        finally:
            for handle in running:
                handle.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def _start(self, step: Step, *, parallel: bool) -> Attempt:
        assert self.tree is not None
        tree = self.tree
        if parallel:
            self._own_trees += 1
            top = self.dir / "steps" / f"{step.key}-{self._own_trees}"
            head = await asyncio.to_thread(git.head, self.tree.top)

            def make() -> StepTree:
                git.add_worktree(self.repo, top, head)
                return open_tree(top, self.prefix, self.settings, own=True, state_dir=None)

            tree = await asyncio.to_thread(make)
        limits, bound = step_limits(
            self.settings.budgets, self.budget, self.pricing, self.ledger.usage, self.ledger.seconds
        )
        settings = _with_budgets(self.settings, limits)
        number = len(self.ledger.done) + 1
        self.notify(f"step {step.key} ({number}/{len(self.ledger.plan)}): {step.title}")
        return await run_step(
            step,
            tree,
            run_id=self.ledger.run_id,
            ledger_text=self.ledger.to_text(current=step.key),
            client=self.client,
            settings=settings,
            runner=self.runner,
            snapshot_budget=self.snapshot_budget,
            transcript_dir=self.dir / "transcripts",
            workspace=Path(self.ledger.root),
            limits_bound=bound,
        )

    async def _settle(self, attempt: Attempt) -> dict[str, str] | _Stop | None:
        """Bring a finished step onto the branch, or decide what its failure means. Returns a
        failure to revise the plan with, a stop, or None."""
        ledger, step = self.ledger, attempt.step
        ledger.usage = add_usage(ledger.usage, attempt.task.usage)
        if attempt.finished:
            assert self.tree is not None and attempt.commit is not None
            commit = attempt.commit
            if attempt.tree.own:
                before = await asyncio.to_thread(git.head, self.tree.top)
                merged = await asyncio.to_thread(git.bring_in, self.tree.top, commit)
                await asyncio.to_thread(git.remove_worktree, self.repo, attempt.tree.top)
                if not merged:
                    count = self._conflicts[step.key] = self._conflicts.get(step.key, 0) + 1
                    self.notify(f"step {step.key}: conflicts with the merged tree; running again")
                    if count >= MAX_CONFLICT_RERUNS:
                        return self._failed(attempt, "its changes conflict with earlier steps")
                    self._save()
                    return None
                commit = await asyncio.to_thread(git.head, self.tree.top)
                files = await asyncio.to_thread(git.changed_files, self.tree.top, before, commit)
                await asyncio.to_thread(self.tree.refresh, files)
            await asyncio.to_thread(self._record, attempt, commit)
            return None
        error = attempt.error
        if attempt.tree.own:
            await asyncio.to_thread(git.remove_worktree, self.repo, attempt.tree.top)
        if _OUTAGE.match(error):
            return await self._outage(step, error)
        self._tick()
        if attempt.limits_bound and exhausted(
            self.budget, self.pricing, ledger.usage, ledger.seconds
        ):
            self._save()  # the run's budget ran out inside the step: stop, the step reruns later
            return None
        return self._failed(attempt, error)

    def _record(self, attempt: Attempt, commit: str) -> None:
        assert self.tree is not None
        top, result = self.tree.top, attempt.task.result or {}
        verification = step_verification(result, attempt.step)
        record = StepRecord(
            key=attempt.step.key,
            title=attempt.step.title,
            commit=commit,
            summary=str(result.get("summary") or ""),
            diff_stat=git.diff_stat(top, f"{commit}^", commit),
            files=git.changed_files(top, f"{commit}^", commit),
            verification=verification,
            task_id=attempt.task.id,
            attempts=1 + sum(1 for f in self.ledger.failures if f["key"] == attempt.step.key),
            usage=dict(attempt.task.usage),
            seconds=round(attempt.seconds, 3),
        )
        self.ledger.done.append(record)
        self.ledger.attempts_without_progress = 0
        self._outage_waited = 0.0
        attempt.task.message = f"committed {commit[:10]} on {self.ledger.branch}"
        self.store.journal.record(attempt.task)
        if self._on_task is not None:
            self._on_task(attempt.task)
        self._save()
        self.notify(f"step {record.key} done: {record.diff_stat or 'no file changed'}")

    def _failed(self, attempt: Attempt, error: str) -> dict[str, str] | _Stop:
        ledger, step = self.ledger, attempt.step
        signature = failure_signature(error)
        seen = any(f.get("signature") == signature for f in ledger.failures)
        ledger.failures.append(
            {"key": step.key, "error": error, "signature": signature, "task_id": attempt.task.id}
        )
        ledger.attempts_without_progress += 1
        self._save()
        self.notify(f"step {step.key} failed: {error}")
        if seen:
            return _Stop(STUCK, f"the same failure twice (step {step.key}): {error}")
        window = self.settings.goals.stuck_window
        if window and ledger.attempts_without_progress >= window:
            return _Stop(STUCK, f"no step finished in the last {window} attempts; last: {error}")
        if ledger.revision >= self.settings.goals.max_revisions:
            return _Stop(
                STUCK, f"the plan was revised {ledger.revision} times; step {step.key}: {error}"
            )
        return {"key": step.key, "title": step.title, "error": error}

    async def _outage(self, step: Step, error: str) -> _Stop | None:
        """The provider is down: wait with backoff, then the step runs again; past the
        configured wait the run pauses (resumable)."""
        goals = self.settings.goals
        if self._outage_waited >= goals.outage_wait_s:
            return _Stop(
                PAUSED,
                f"the provider has been failing for {self._outage_waited:.0f} s "
                f"(last: {error}); resume when it is back",
            )
        attempt_wait = min(
            MAX_OUTAGE_BACKOFF_S,
            goals.outage_backoff_s * 2 ** _outage_count(self._outage_waited, goals),
            max(0.0, goals.outage_wait_s - self._outage_waited),
        )
        self.notify(f"step {step.key}: provider failing ({error}); waiting {attempt_wait:.1f} s")
        self._save()
        await asyncio.sleep(attempt_wait)
        self._outage_waited += max(attempt_wait, 1e-3)
        return None

    async def _plan(self, failure: dict[str, str] | None) -> None:
        """Ask the planner for the plan (or, after a failure, for the remaining plan); an
        outage is waited out here too."""
        assert self.tree is not None
        ledger = self.ledger
        number = ledger.revision + (1 if failure else 0)
        while True:
            self.notify("planning" if failure is None else f"revising the plan ({number})")
            snapshot = await asyncio.to_thread(
                self.tree.builder.build, budget=self.snapshot_budget, instruction=ledger.goal
            )
            checks, check_notes = resolve_checks(
                self.tree.root, self.settings, environment=Path(ledger.root)
            )
            try:
                reply = await plan_goal(
                    goal=ledger.goal,
                    index=self.tree.index,
                    snapshot=snapshot,
                    client=self.client,
                    settings=self.settings,
                    transcript_path=self.dir / "transcripts" / f"planner-{number}.jsonl",
                    ledger_text=ledger.to_text() if failure else "",
                    failure=failure,
                    done=ledger.done_keys,
                    checks=checks,
                    check_notes=check_notes,
                )
            except ModelError as exc:
                if exc.kind in OUTAGE_KINDS:
                    stop = await self._outage(Step("planner", "planning", "-"), str(exc))
                    if stop is not None:
                        raise stop from None
                    continue
                message = f"the planner failed: model error ({exc.kind}): {exc}"
                raise _Stop(FAILED, message) from None
            except (LimitsExceeded, LoopDetected) as exc:
                raise _Stop(FAILED, f"the planner failed: {exc}") from None
            break
        ledger.usage = add_usage(ledger.usage, reply.usage)
        done = [s for s in ledger.plan if ledger.record(s.key) is not None]
        ledger.plan = done + reply.steps
        ledger.plan_notes = reply.notes
        if failure is not None:
            ledger.revision = number
        self._save()
        self.notify(f"plan: {len(reply.steps)} steps to run")

    # -- bookkeeping --------------------------------------------------------------------------
    def _tick(self) -> None:
        self.ledger.seconds = self._seconds_before + (time.monotonic() - self._session_start)
        self.ledger.cost = self.pricing.cost(self.ledger.usage)

    def _save(self) -> None:
        self._tick()
        self.store.save(self.ledger)

    def _remove_own_trees(self) -> None:
        steps = self.dir / "steps"
        if not steps.is_dir():
            return
        for tree in sorted(steps.iterdir()):
            git.remove_worktree(self.repo, tree)
        git.prune_worktrees(self.repo)


def step_verification(result: dict[str, Any], step: Step) -> dict[str, Any]:
    """The task's verification record (agents/verification.py) with a one-line ``result`` for
    the ledger; the reviewer's approval when no check ran."""
    record = dict(result.get("verification") or {})
    line = summary_line(record) if record.get("state") else ""
    accepted = record.get("acceptance_run") or {}
    if not line and not accepted.get("ran"):
        approved = result.get("state") == "succeeded"
        line = "no checks ran; " + ("the reviewer approved" if approved else "no changes needed")
    if accepted.get("ran"):
        seconds = accepted.get("duration_s", 0)
        line = f"{line} Acceptance check passed: {accepted['command']} ({seconds:.1f} s).".strip()
    record["result"] = line
    record["acceptance"] = step.acceptance.to_text()
    return record


def _outage_count(waited: float, goals: Any) -> int:
    total, count = 0.0, 0
    while total < waited and count < 20:
        total += goals.outage_backoff_s * 2**count
        count += 1
    return count


def _with_budgets(settings: Settings, limits: Any) -> Settings:
    import dataclasses

    return dataclasses.replace(settings, budgets=limits)
