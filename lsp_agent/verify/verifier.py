"""Baseline vs after: what a task's edits broke, checked on a scratch tree in the sandbox.

One ``Verifier`` per task. ``baseline()`` runs every check once on the unmodified scratch tree
(the workspace as the task read it, frozen buffers included), cached by the tree's content hash
in ``cache_dir``; ``check(texts)`` writes the candidate files over the scratch tree, runs the
checks again and compares: only a failure the baseline did not have is *new*. Pre-existing
failures are reported and never blamed. ``record()`` is what the task result keeps.
The orchestrator (agents/verification.py) and the researcher's run_check tool use this class;
nothing here writes the user's files.
"""

from __future__ import annotations

import json
import logging
import shlex
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.verify.checks import Check
from lsp_agent.verify.outcomes import failures
from lsp_agent.verify.sandbox import Limits, run_sandboxed
from lsp_agent.verify.scratch import ScratchError, ScratchTree, create_scratch

log = logging.getLogger(__name__)
BASELINE_FORMAT = 1


@dataclass
class CheckRun:
    """One check's run: its failures by key (detail trimmed), how it ended, how long it took."""

    name: str
    kind: str
    exit_code: int | None
    limit: str | None
    duration_s: float
    failures: dict[str, str]
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "exit_code": self.exit_code,
            "limit": self.limit,
            "duration_s": round(self.duration_s, 3),
            "failures": self.failures,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, cached: bool = False) -> CheckRun:
        return cls(
            data["name"],
            data["kind"],
            data.get("exit_code"),
            data.get("limit"),
            float(data.get("duration_s", 0.0)),
            dict(data.get("failures") or {}),
            cached,
        )


@dataclass
class Comparison:
    name: str
    kind: str
    before: int  # failures on the baseline
    after: int
    new: dict[str, str]  # key -> trimmed detail: what the task broke
    fixed: list[str]
    preexisting: list[str]
    duration_s: float
    limit: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "before": self.before,
            "after": self.after,
            "new": self.new,
            "fixed": self.fixed,
            "preexisting": self.preexisting,
            "duration_s": round(self.duration_s, 3),
            "limit": self.limit,
        }


@dataclass
class Round:
    number: int
    comparisons: list[Comparison]

    @property
    def new_failures(self) -> int:
        return sum(len(c.new) for c in self.comparisons)

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.number,
            "new_failures": self.new_failures,
            "checks": [c.to_json() for c in self.comparisons],
        }

    def failure_text(self) -> str:
        """The new failures, trimmed, for the debugger and the task record."""
        parts = []
        for comp in self.comparisons:
            for key, detail in comp.new.items():
                parts.append(f"## {comp.name} ({comp.kind}): {key}\n{detail}".rstrip())
        return "\n\n".join(parts)


@dataclass
class Verifier:
    root: Path
    checks: list[Check]
    limits: Limits = field(default_factory=Limits)
    sandbox: str = "bwrap"
    texts: Mapping[str, str] = field(default_factory=dict)  # frozen buffers: the task's view
    scratch_parent: Path | None = None
    cache_dir: Path | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    # Where the checks see the tree, and whose .venv/node_modules they use (read-only): the
    # workspace a goal run's worktree stands for. None = root itself.
    workspace: Path | None = None
    overlay: bool = True  # an overlay scratch tree where it works (copies nothing), else a copy
    scratch_kind: str | None = None  # what the tree was: "overlay" | "git" | "copy" (the record)
    rounds: list[Round] = field(default_factory=list)
    _tree: ScratchTree | None = None
    _baseline: list[CheckRun] | None = None
    _originals: dict[str, str | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- scratch tree --------------------------------------------------------------------
    def tree(self) -> ScratchTree:
        with self._lock:  # the baseline thread and the researcher's run_check both ask
            if self._tree is None:
                self._tree = self._new_tree()
                self.scratch_kind = self._tree.kind
            return self._tree

    def _new_tree(self) -> ScratchTree:
        """The workspace as the task read it (frozen buffers written over it)."""
        texts = dict(self.texts)
        if self.overlay and self.sandbox != "none":
            try:
                return create_scratch(self.root, self.scratch_parent, texts=texts, mode="overlay")
            except ScratchError as exc:
                log.info("verification copies the workspace: %s", exc)
        return create_scratch(self.root, self.scratch_parent, texts=texts)

    def close(self) -> None:
        with self._lock:
            if self._tree is not None:
                self._tree.remove()
                self._tree = None

    # -- runs ----------------------------------------------------------------------------
    def run(
        self, check: Check, *, extra: Sequence[str] = (), changed: Sequence[str] = ()
    ) -> CheckRun:
        return self._run_on(self.tree(), check, extra=extra, changed=changed)

    def _run_on(
        self,
        tree: ScratchTree,
        check: Check,
        *,
        extra: Sequence[str] = (),
        changed: Sequence[str] = (),
    ) -> CheckRun:
        outcome = run_sandboxed(
            [*check.argv, *extra],
            tree=tree,
            workspace=self.workspace or self.root,
            limits=self.limits,
            env=dict(check.env) or None,
            sandbox=self.sandbox,
            cancel=self.cancel,
        )
        found = failures(check.parser, outcome.output, outcome.exit_code, changed)
        if outcome.limit is not None:
            found[f"stopped: {outcome.limit} limit"] = "; ".join(outcome.notes) or (
                f"{shlex.join(check.argv)} was stopped by the {outcome.limit} limit"
            )
        return CheckRun(
            check.name, check.kind, outcome.exit_code, outcome.limit, outcome.duration_s, found
        )

    def baseline(self) -> list[CheckRun]:
        """Every check on the unmodified scratch tree; cached by content hash and commands."""
        if self._baseline is not None:
            return self._baseline
        return self._run_baseline(self.tree())

    def _run_baseline(self, tree: ScratchTree) -> list[CheckRun]:
        key = self._cache_key(tree)
        cached = self._load_baseline(key)
        if cached is not None:
            self._baseline = cached
            return cached
        self._baseline = [self._run_on(tree, check) for check in self.checks]
        self._store_baseline(key, self._baseline)
        return self._baseline

    def _rebase(self, tree: ScratchTree) -> None:
        """An overlay tree shows the live workspace: when files under it changed since the
        baseline (a git checkout, a save of a file the task did not freeze), the baseline is
        run again on the new base (a fresh overlay tree is cheap), so only the task's edits are
        compared."""
        if not tree.base_changed():
            return
        log.info("the workspace changed under the scratch tree: running the baseline again")
        fresh = self._new_tree()
        try:
            self._baseline = None
            self._run_baseline(fresh)
        finally:
            fresh.remove()

    def check(self, files: Mapping[str, str | None]) -> Round:
        """Candidate files (path -> text, None = deleted) over the scratch tree, then every
        check, compared with the baseline. Files an earlier round wrote and this one does not
        are put back first."""
        self.baseline()
        tree = self.tree()
        self._rebase(tree)
        baseline = {run.name: run for run in self.baseline()}
        restore = {p: t for p, t in self._originals.items() if p not in files}
        for path in files:
            if path not in self._originals:
                self._originals[path] = tree.read_text(path)
        tree.write_texts({**restore, **files})
        changed = sorted(files)
        comparisons = []
        for check in self.checks:
            after = self.run(check, changed=changed)
            before = baseline[check.name]
            comparisons.append(
                Comparison(
                    check.name,
                    check.kind,
                    before=len(before.failures),
                    after=len(after.failures),
                    new={k: v for k, v in after.failures.items() if k not in before.failures},
                    fixed=sorted(set(before.failures) - set(after.failures)),
                    preexisting=sorted(set(before.failures) & set(after.failures)),
                    duration_s=after.duration_s,
                    limit=after.limit,
                )
            )
        result = Round(len(self.rounds) + 1, comparisons)
        self.rounds.append(result)
        return result

    def record(self, state: str, message: str = "") -> dict[str, Any]:
        """What a task result keeps: commands, baseline and per-round counts, durations, and
        the trimmed output of what still fails."""
        last = self.rounds[-1] if self.rounds else None
        return {
            "state": state,
            "message": message,
            "sandbox": self.sandbox,
            "scratch": self.scratch_kind,
            "commands": [c.to_json() for c in self.checks],
            "baseline": [
                {
                    "name": r.name,
                    "failures": len(r.failures),
                    "duration_s": round(r.duration_s, 3),
                    "cached": r.cached,
                }
                for r in self._baseline or []
            ],
            "rounds": [r.to_json() for r in self.rounds],
            "remaining": last.failure_text() if last and last.new_failures else "",
        }

    # -- baseline cache ------------------------------------------------------------------
    def _cache_key(self, tree: ScratchTree) -> str:
        import hashlib

        commands = json.dumps([c.to_json() for c in self.checks], sort_keys=True)
        return hashlib.sha256(f"{tree.content_hash()}\0{commands}".encode()).hexdigest()[:32]

    def _load_baseline(self, key: str) -> list[CheckRun] | None:
        if self.cache_dir is None:
            return None
        try:
            data = json.loads((self.cache_dir / f"baseline-{key}.json").read_text("utf-8"))
            if data.get("format") != BASELINE_FORMAT:
                return None
            return [CheckRun.from_json(r, cached=True) for r in data["runs"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _store_baseline(self, key: str, runs: list[CheckRun]) -> None:
        if self.cache_dir is None or any(r.limit == "cancelled" for r in runs):
            return
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            target = self.cache_dir / f"baseline-{key}.json"
            tmp = target.with_suffix(f".{time.monotonic_ns()}.tmp")
            payload = {"format": BASELINE_FORMAT, "runs": [r.to_json() for r in runs]}
            tmp.write_text(json.dumps(payload), "utf-8")
            tmp.replace(target)
        except OSError as exc:
            log.warning("cannot cache the verification baseline: %s", exc)
