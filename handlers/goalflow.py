"""Goal runs from an editor: ``lspAgent.runGoal``, ``lspAgent.cancelGoal``,
``lspAgent.applyGoal``, and the runs listed in ``lspAgent/tasks``.

A run is started (or resumed) through ``goals.start`` — the same entry point as
``lsp-agent goal`` — and driven on the worker loop; its one work-done progress (token
``lsp-agent/goal/<run-id>``, cancellable) says which step runs. Nothing touches the user's
files until ``lspAgent.applyGoal``, which sends the run's final diff as one
``workspace/applyEdit`` through the same path as a task's result.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from lsp_agent.config import ConfigError
from lsp_agent.handlers.apply_edit import apply_result
from lsp_agent.handlers.session import Root, Session
from lsp_agent.handlers.taskflow import release_client
from lsp_agent.handlers.work_progress import WorkProgress
from lsp_agent.tasks.journal import TaskJournal
from lsp_agent.tasks.model import Task, TaskState

log = logging.getLogger(__name__)

RUN_GOAL = "lspAgent.runGoal"
CANCEL_GOAL = "lspAgent.cancelGoal"
APPLY_GOAL = "lspAgent.applyGoal"
APPLY_KEY = "apply"  # the journaled task that applies a run's final diff


def _object(command: str, args: tuple[Any, ...]) -> Mapping[str, Any]:
    if len(args) != 1 or not isinstance(args[0], Mapping):
        raise JsonRpcInvalidParams(f"{command} takes one argument, an object")
    return args[0]


def _number(obj: Mapping[str, Any], name: str, kind: type) -> Any:
    value = obj.get(name)
    if value is None:
        return kind(0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise JsonRpcInvalidParams(f"{name!r} must be a non-negative number, got {value!r}")
    return kind(value)


def _root(session: Session, obj: Mapping[str, Any]) -> Root:
    uri = obj.get("uri")
    if uri is None:
        root = session.roots.primary
        if root is None:
            raise JsonRpcInvalidParams("no workspace folder is open")
        return root
    if not isinstance(uri, str):
        raise JsonRpcInvalidParams(f"'uri' has the wrong type: {uri!r}")
    for root in session.roots:  # a folder's own URI names that folder
        if root.uri.rstrip("/") == uri.rstrip("/"):
            return root
    try:
        return session.roots.find(uri)[0]
    except ValueError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None


def _run_id(command: str, args: tuple[Any, ...]) -> str:
    run_id = _object(command, args).get("runId")
    if not isinstance(run_id, str) or not run_id:
        raise JsonRpcInvalidParams("missing 'runId'")
    return run_id


def run_summaries(session: Session) -> list[dict[str, Any]]:
    """Goal runs of every folder for ``lspAgent/tasks``: state, progress and steps (blocking:
    call it in a thread)."""
    runs = []
    for root in session.roots:
        if root.journal is not None:
            runs.extend(_folder_runs(root.journal))
    return sorted(runs, key=lambda run: -run["createdAt"])


# journal -> (its change key, its goal runs' summaries): a poll that finds the journal
# unchanged parses no ledger. Weak: a closed folder's journal goes with it.
_listed_runs: weakref.WeakKeyDictionary[TaskJournal, tuple[Any, list[dict[str, Any]]]] = (
    weakref.WeakKeyDictionary()
)


def _folder_runs(journal: TaskJournal) -> list[dict[str, Any]]:
    from lsp_agent.goals.report import report_json
    from lsp_agent.goals.store import RunStore

    change = journal.change_key()
    cached = _listed_runs.get(journal)
    if cached is not None and cached[0] == change:
        return cached[1]
    runs = []
    for ledger in RunStore(journal).runs(limit=20):
        report = report_json(ledger)
        runs.append(
            {
                key: report[key]
                for key in ("runId", "goal", "state", "reason", "branch", "tokens", "cost")
            }
            | {
                "done": len(ledger.done),
                "total": len(ledger.plan),
                "createdAt": ledger.created_at,
                "steps": [
                    {k: s.get(k) for k in ("key", "title", "state", "commit", "taskId")}
                    for s in report["steps"]
                ],
            }
        )
    _listed_runs[journal] = (change, runs)
    return runs


class GoalRuns:
    """The goal runs this server drives: started by a command, or resumed on their own when a
    folder opens with a run that a stopped process left ``running``."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.live: dict[str, Callable[[], Any]] = {}  # run id -> cancels it on the worker loop
        self.sessions: dict[str, int] = {}  # run id -> times run in this server (tokens)

    def start(self, root: Root, ledger: Any, store: Any, client: Any, jobs: int) -> None:
        """Drive the run in the background; ``client`` was acquired for it and is released
        when the run ends."""

        async def drive() -> None:
            try:
                await self._drive(root, ledger, store, client, jobs)
            finally:
                await release_client(self.session, client)

        self.session.spawn_for(root, drive(), f"goal {ledger.run_id}")

    def cancel(self, run_id: str) -> bool:
        stop = self.live.get(run_id)
        if stop is None:
            return False
        stop()
        return True

    async def resume_interrupted(self, root: Root) -> list[str]:
        """Continue every run of ``root`` that is ``running``/``planning`` with no process
        holding it (its process was killed). Deliberate stops (budget, cancel, pause) wait for
        the user. Nothing happens without a configured model."""
        from lsp_agent.agents.providers import resolve_provider
        from lsp_agent.goals.ledger import PLANNING, RUNNING
        from lsp_agent.goals.start import is_locked, resumable
        from lsp_agent.goals.store import RunStore, journal_for

        try:
            resolve_provider(self.session.settings)
        except ConfigError:
            return []

        def find() -> list[tuple[Any, Any]]:
            found = []
            journal = journal_for(root.path)
            store = RunStore(journal)
            for ledger in store.runs():
                if ledger.state not in (PLANNING, RUNNING) or ledger.run_id in self.live:
                    continue
                if is_locked(root.path, ledger.run_id):
                    continue
                found.append(
                    (resumable(store, ledger.run_id, None), RunStore(journal_for(root.path)))
                )
            journal.close()
            return found

        resumed = []
        for ledger, store in await asyncio.to_thread(find):
            log.info("resuming goal run %s (its process stopped)", ledger.run_id)
            self.session.show(f"lsp-agent: resuming goal run {ledger.run_id}: {ledger.goal[:60]}")
            client = self.session.model_clients.acquire(self.session.settings)
            self.start(root, ledger, store, client, 1)
            resumed.append(ledger.run_id)
        return resumed

    async def _drive(self, root: Root, ledger: Any, store: Any, client: Any, jobs: int) -> None:
        from lsp_agent.goals.report import report_text
        from lsp_agent.goals.start import GoalError, execute

        session, run_id = self.session, ledger.run_id
        self.sessions[run_id] = self.sessions.get(run_id, 0) + 1  # a resume: a fresh token
        suffix = "" if self.sessions[run_id] == 1 else f"#{self.sessions[run_id]}"
        progress = WorkProgress(
            session,
            f"lsp-agent/goal/{run_id}{suffix}",
            "goal: " + ledger.goal.splitlines()[0][:60],
            cancellable=True,
            on_cancel=lambda: self.cancel(run_id),
        )
        await progress.begin("planning" if not ledger.plan else "resuming")
        assert session.worker is not None
        loop = asyncio.get_running_loop()
        notify = session.worker.call_back(loop, lambda message: progress.report(message))

        async def guarded() -> Any:
            # Runs on the worker loop. Cancelling goes through this task, so the run saves its
            # cancelled state before the journal closes (here, on the same loop, afterwards).
            me = asyncio.current_task()
            assert me is not None
            worker_loop = asyncio.get_running_loop()
            self.live[run_id] = lambda: worker_loop.call_soon_threadsafe(me.cancel)
            try:
                return await execute(
                    ledger,
                    store=store,
                    settings=session.settings,
                    client=client,
                    provider=client.provider,
                    jobs=jobs,
                    notify=notify,
                )
            finally:
                store.journal.close()

        try:
            final = await session.worker.run(guarded())
        except asyncio.CancelledError:
            progress.end("cancelled: resume it with lspAgent.runGoal {resume}")
            session.show(f"lsp-agent: goal run {run_id} cancelled; it can be resumed")
            return
        except GoalError as exc:
            progress.end(str(exc))
            session.show(f"lsp-agent: goal run {run_id}: {exc}", types.MessageType.Error)
            return
        finally:
            self.live.pop(run_id, None)
        progress.end(f"{final.state}: {final.reason}")
        kind = types.MessageType.Info if final.state == "succeeded" else types.MessageType.Warning
        first = report_text(final).splitlines()
        session.show(f"lsp-agent: {first[0]}; {first[-1]} (branch {final.branch})", kind)


def setup(server: LanguageServer, session: Session) -> None:
    runs = GoalRuns(session)
    session.goal_runs = runs

    @server.command(RUN_GOAL)
    async def run_goal(*args: Any) -> dict[str, Any]:
        from lsp_agent.goals.budget import RunBudget
        from lsp_agent.goals.start import GoalError, new_ledger, resumable
        from lsp_agent.goals.store import RunStore, journal_for

        obj = _object(RUN_GOAL, args)
        goal, resume = obj.get("goal"), obj.get("resume")
        if not isinstance(goal, str | None) or not isinstance(resume, str | None):
            raise JsonRpcInvalidParams("'goal' and 'resume' must be strings")
        if not (goal or "").strip() and not resume:
            raise JsonRpcInvalidParams("no goal: the client should prompt for one ('goal')")
        jobs = _number(obj, "jobs", int) or 1
        budget = RunBudget(
            _number(obj, "budgetTokens", int),
            _number(obj, "budgetCost", float),
            _number(obj, "maxHours", float),
        )
        root = _root(session, obj)
        try:
            client = session.model_clients.acquire(session.settings)
        except ConfigError as exc:
            message = f"lsp-agent cannot run the goal: {exc}"
            session.show(message, types.MessageType.Error)
            return {"runId": None, "error": message}

        def prepare() -> tuple[Any, Any]:
            journal = journal_for(root.path)
            store = RunStore(journal)
            try:
                if resume:
                    given = budget if (budget.tokens or budget.cost or budget.hours) else None
                    ledger = resumable(store, resume, given)
                else:
                    ledger = new_ledger(root.path, str(goal), budget)
                    store.create(ledger)
            except BaseException:
                journal.close()
                raise
            return ledger, store

        try:
            ledger, store = await asyncio.to_thread(prepare)
        except GoalError as exc:
            await release_client(session, client)
            message = f"lsp-agent cannot run the goal: {exc}"
            session.show(message, types.MessageType.Error)
            return {"runId": None, "error": message}
        if ledger.run_id in runs.live:
            await release_client(session, client)
            store.journal.close()
            return {"runId": ledger.run_id, "error": "this run is already running"}
        runs.start(root, ledger, store, client, jobs)
        return {"runId": ledger.run_id, "branch": ledger.branch}

    @server.command(CANCEL_GOAL)
    def cancel_goal(*args: Any) -> dict[str, Any]:
        run_id = _run_id(CANCEL_GOAL, args)
        return {"runId": run_id, "cancelled": runs.cancel(run_id)}

    @server.command(APPLY_GOAL)
    async def apply_goal(*args: Any) -> dict[str, Any]:
        from lsp_agent.goals.apply import final_changes
        from lsp_agent.goals.store import RunStore

        run_id = _run_id(APPLY_GOAL, args)
        for root in session.roots:
            if root.journal is None:
                continue
            ledger = RunStore(root.journal).load(run_id)
            if ledger is not None:
                break
        else:
            raise JsonRpcInvalidParams(f"no goal run {run_id!r}")
        if run_id in runs.live:
            return {"runId": run_id, "applied": False, "error": "the run is still running"}
        changes, problems = await asyncio.to_thread(final_changes, ledger)
        if problems:
            message = "not applied: " + "; ".join(problems)
            session.show(f"lsp-agent: goal run {run_id}: {message}", types.MessageType.Warning)
            return {"runId": run_id, "applied": False, "error": message}
        title = "goal: " + ledger.goal.splitlines()[0][:60]
        summary = f"{len(ledger.done)} steps on {ledger.branch}: " + "; ".join(
            record.title for record in ledger.done
        )
        task = Task.new({"instruction": ledger.goal}, title=title, run_id=run_id, key=APPLY_KEY)
        task.state = TaskState.SUCCEEDED
        task.result = {"state": "succeeded", "summary": summary, "changes": changes}
        root.journal.record(task)
        return {"runId": run_id, "taskId": task.id, **await apply_result(session, root, task)}
