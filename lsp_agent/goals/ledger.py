"""The ledger: a goal run's whole state, as records (journaled) and as the text every step reads.

It holds the goal, the current plan, each finished step's summary, commit, diff stats,
verification and decisions, the failures and revisions so far, the open problems, and the
run's usage and budgets. ``to_text`` is what each request of each step carries after the stable
prefix (``TaskSpec.ledger``); it depends only on the records, never on the clock, so the same
run state renders the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lsp_agent.goals.plan import Step

# Run states. Finished ones end the process; paused ones are resumable as they are.
PLANNING, RUNNING, SUCCEEDED = "planning", "running", "succeeded"
STOPPED_BUDGET, PAUSED, STUCK, FAILED, CANCELLED = (
    "budget_stopped",
    "paused",
    "stuck",
    "failed",
    "cancelled",
)
PLANNED = "planned"  # a --dry-run: the plan is journaled, nothing ran; --resume runs it
RESUMABLE = frozenset({PLANNED, PLANNING, RUNNING, STOPPED_BUDGET, PAUSED, CANCELLED, STUCK})
SUMMARY_CHARS = 1200  # per finished step in the text: the ledger stays small over 50 steps


@dataclass
class StepRecord:
    key: str
    title: str
    commit: str
    summary: str
    diff_stat: str  # "3 files changed, 10 insertions(+), 2 deletions(-)"
    files: list[str]
    verification: dict[str, Any]  # what checked the step: {"by": ..., "result": ..., ...}
    task_id: str
    attempts: int = 1
    usage: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepRecord:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Ledger:
    run_id: str
    goal: str
    root: str  # the user's workspace (never written during the run)
    branch: str  # lsp-agent/<run-id>
    base_commit: str  # the workspace's HEAD plus its uncommitted changes, as a commit
    plan: list[Step] = field(default_factory=list)
    plan_notes: str = ""
    revision: int = 0  # how many times the planner revised the plan
    done: list[StepRecord] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)  # {"key", "error", "attempt"}
    problems: list[str] = field(default_factory=list)  # open problems the planner noted
    state: str = PLANNING
    reason: str = ""  # why it stopped (budget, stuck, error)
    usage: dict[str, int] = field(default_factory=dict)  # the run's total, planner included
    cost: float | None = None  # dollars, when every model used has a price
    seconds: float = 0.0  # wall clock spent running (summed over sessions)
    budgets: dict[str, float] = field(default_factory=dict)  # tokens, cost, hours (0 = none)
    attempts_without_progress: int = 0  # step attempts since the last finished step
    created_at: float = 0.0

    # -- queries -------------------------------------------------------------------------
    @property
    def done_keys(self) -> list[str]:
        return [record.key for record in self.done]

    def pending(self) -> list[Step]:
        finished = set(self.done_keys)
        return [step for step in self.plan if step.key not in finished]

    def step(self, key: str) -> Step | None:
        return next((s for s in self.plan if s.key == key), None)

    def record(self, key: str) -> StepRecord | None:
        return next((r for r in self.done if r.key == key), None)

    # -- text ----------------------------------------------------------------------------
    def to_text(self, current: str | None = None) -> str:
        """The ledger as a step reads it; ``current`` marks the step being run."""
        finished = {record.key: record for record in self.done}
        lines = ["# Goal ledger", "", "Goal: " + self.goal.strip(), ""]
        lines.append(f"Plan (revision {self.revision}):")
        for number, step in enumerate(self.plan, 1):
            status = "done" if step.key in finished else "pending"
            if step.key == current:
                status = "current: this task"
            deps = f" (after {', '.join(step.depends_on)})" if step.depends_on else ""
            lines.append(f"{number}. [{status}] {step.key}: {step.title}{deps}")
        if self.plan_notes:
            lines += ["", "Planner notes: " + self.plan_notes.strip()]
        if self.done:
            lines += ["", "Finished steps (their changes are in the code you see):"]
            for record in self.done:
                summary = record.summary.strip()
                if len(summary) > SUMMARY_CHARS:
                    summary = summary[:SUMMARY_CHARS].rstrip() + " ..."
                lines.append(
                    f"- {record.key} {record.title} (commit {record.commit[:10]}; "
                    f"{record.diff_stat or 'no file changed'}; "
                    f"verification: {record.verification.get('result', 'none')})"
                )
                lines.extend("  " + line for line in summary.splitlines() if line.strip())
        if self.failures:
            lines += ["", "Failed attempts (do not repeat them):"]
            lines.extend(f"- {f['key']}: {_one_line(f['error'])}" for f in self.failures[-8:])
        if self.problems:
            lines += ["", "Open problems:"]
            lines.extend(f"- {problem}" for problem in self.problems)
        return "\n".join(lines) + "\n"

    # -- records -------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "goal",
            "run_id": self.run_id,
            "goal": self.goal,
            "root": self.root,
            "branch": self.branch,
            "base_commit": self.base_commit,
            "plan": [step.to_json() for step in self.plan],
            "plan_notes": self.plan_notes,
            "revision": self.revision,
            "done": [record.to_json() for record in self.done],
            "failures": list(self.failures),
            "problems": list(self.problems),
            "state": self.state,
            "reason": self.reason,
            "usage": dict(self.usage),
            "cost": self.cost,
            "seconds": round(self.seconds, 3),
            "budgets": dict(self.budgets),
            "attempts_without_progress": self.attempts_without_progress,
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Ledger:
        return cls(
            run_id=str(data["run_id"]),
            goal=str(data["goal"]),
            root=str(data["root"]),
            branch=str(data["branch"]),
            base_commit=str(data.get("base_commit", "")),
            plan=[Step.from_json(s) for s in data.get("plan") or []],
            plan_notes=str(data.get("plan_notes", "")),
            revision=int(data.get("revision", 0)),
            done=[StepRecord.from_json(r) for r in data.get("done") or []],
            failures=list(data.get("failures") or []),
            problems=list(data.get("problems") or []),
            state=str(data.get("state", PLANNING)),
            reason=str(data.get("reason", "")),
            usage=dict(data.get("usage") or {}),
            cost=data.get("cost"),
            seconds=float(data.get("seconds", 0.0)),
            budgets=dict(data.get("budgets") or {}),
            attempts_without_progress=int(data.get("attempts_without_progress", 0)),
            created_at=float(data.get("created_at", 0.0)),
        )


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit] + " ..."
