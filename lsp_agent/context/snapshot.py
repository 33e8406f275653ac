"""SnapshotBuilder: the rolling, token-budgeted long-context snapshot of a workspace.

Layout: a stable prefix (overview + repo map, see prefix.py), then a volatile tail (tail.py):
changes since the prefix was built, files related to the focus, the focus files in full,
diagnostics, the selection. The prefix is reused byte for byte, in memory and across processes
(persist.py), until the file set changes or the changes it misses pass
``ContextSettings.churn_threshold`` of its tokens. Budgets are real token counts: the prefix
plus the tail never exceed the budget.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import compress, repeat
from operator import attrgetter, ne
from pathlib import Path
from types import SimpleNamespace
from typing import Protocol

from lsp_agent.config import ContextSettings, Settings
from lsp_agent.context import tail as tails
from lsp_agent.context.idgraph import reference_graph, stable_ranks
from lsp_agent.context.model import (
    Manifest,
    Selection,
    Snapshot,
)
from lsp_agent.context.neighbourhood import LazyRows, OutRows, local_pagerank
from lsp_agent.context.overview import overview_files
from lsp_agent.context.persist import (
    load_graph,
    load_ranks,
    load_state,
    ranks_key,
    save_graph,
    save_ranks,
    save_state,
)
from lsp_agent.context.prefix import PrefixState, build_prefix
from lsp_agent.context.ranking import (
    FileSummary,
    RefGraph,
    mentioned_identifiers,
    order,
    pagerank,
    patch_graph,
    row_matches,
    summarize,
)
from lsp_agent.context.render import FULL, OVERVIEW, SIGNATURES, RenderCache
from lsp_agent.context.sensitive import is_sensitive
from lsp_agent.context.tail import Block, Change
from lsp_agent.context.testfiles import rank_down_tests
from lsp_agent.context.tokens import load_in_background
from lsp_agent.index.model import FileEntry
from lsp_agent.index.pool import gc_paused, return_freed_memory

logger = logging.getLogger(__name__)
_GONE = SimpleNamespace(sha256=None)  # what a file gone from the index reads as

TAIL_RESERVE_MAX = 65_536  # the tail's share of the budget is a quarter, at most this much
NEIGHBOURS = 12


class IndexView(Protocol):
    """What the builder reads from ``index.WorkspaceIndex``."""

    def entries(self) -> dict[str, FileEntry]: ...
    def text(self, path: str) -> str | None: ...


def budget_for(
    settings: Settings,
    model_name: str | None = None,
    *,
    kind: str = "instruction",
    provider: object = None,
) -> int:
    """Snapshot tokens for a task of ``kind`` on a model: ``context.budget`` when set, else the
    kind's default, never above what the model's window leaves the snapshot once every role's
    reply, conversation and tokenizer margin are counted (``agents/sizing.py``, the one rule)."""
    from lsp_agent.agents import sizing

    window = sizing.window_for(settings, model_name, provider)
    return sizing.snapshot_budget(
        window,
        kind=kind,
        override=settings.context.budget,
        reserve=settings.context.reserve,
        provider=sizing.family_of(settings, model_name, provider),
    )


def prefix_budget_for(budget: int) -> int:
    return budget - min(budget // 4, TAIL_RESERVE_MAX)


class SnapshotBuilder:
    def __init__(
        self, index: IndexView, settings: ContextSettings, *, state_dir: Path | None
    ) -> None:
        self._index = index
        self._source: IndexView = index  # what this build reads: the index or a task's view
        self._settings = settings
        self._state_dir = state_dir
        self._cache = RenderCache()
        self._states: dict[int, PrefixState] = {}
        self._stale: dict[int, _Stale] = {}  # per prefix budget: files changed since it
        self._graph: RefGraph | None = None
        self._graph_stale: set[str] = set()  # paths changed since the graph was last brought up
        self._stable_scores: dict[str, float] | None = None
        self._stable_whys: tuple[dict[str, float], dict[str, str]] | None = None
        self._rows: dict[tuple[str, ...], LazyRows] = {}
        self._focus_scores: dict[tuple[object, ...], dict[str, float]] = {}
        self._diffs: dict[tuple[str, str, str, str], Change] = {}
        self._lock = threading.Lock()
        # The files as of the last build, kept up to date from the index's change notices
        # when it sends them (WorkspaceIndex.subscribe), so a build after a one-file edit
        # looks at that file, not at all 78k of a kernel (entries() copies and sorts them).
        self._view: dict[str, FileEntry] | None = None
        self._file_set = 0  # bumped whenever a file appears or goes away
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()
        self._tracked = _subscribe(index, self)
        load_in_background()  # every build counts tokens; the first one need not wait for it

    def _note(self, paths: set[str]) -> None:  # on the thread that changed the index
        with self._dirty_lock:
            self._dirty |= paths

    def build(
        self,
        *,
        budget: int,
        focus: Sequence[str] = (),
        instruction: str = "",
        selection: Selection | None = None,
        diagnostics: Sequence[str] = (),
        view: IndexView | None = None,
    ) -> Snapshot:
        """``view`` (a task's ``context.view.TaskView``) is read instead of the index, so the
        snapshot shows the same version of every file as the task's tools."""
        if budget <= 0:
            raise ValueError(f"the snapshot budget must be positive, got {budget}")
        with self._lock:
            entries = self._refresh_view()
            overlay: set[str] = set()
            moved = False
            if view is not None:
                # The view's own versions count as changes for this build only.
                entries, overlay, moved = _overlay(entries, view)
                self._apply(entries, overlay, moved)
            self._source = view if view is not None else self._index
            try:
                # A first build makes ~1M objects, nearly all acyclic: without the pause the
                # collector's passes over them took ~0.2 s of a kernel's first 1M render.
                with gc_paused():
                    return self._build(entries, budget, focus, instruction, selection, diagnostics)
            finally:
                self._source = self._index
                if overlay or moved:
                    assert self._view is not None
                    self._apply(self._view, overlay, moved)

    def rank_ahead(self, *, graph: bool = True) -> None:
        """Rank the files now and, with ``graph``, make the reference graph, persisting both
        in the state dir: the server does it once it has rendered its prefix, so a restart on
        these files reads the ranking back and its first focus the graph (~1.1 s each on the
        kernel). ``lsp-agent index`` ranks only: the graph on top of a cold build's own
        memory took its peak from ~0.8 to ~0.9 GB of the 1 GB it is allowed on the kernel."""
        with self._lock, gc_paused():
            entries = self._refresh_view()
            self._stable(entries)
            if graph:
                self._graph_now(entries)

    def _build(
        self,
        entries: dict[str, FileEntry],
        budget: int,
        focus: Sequence[str],
        instruction: str,
        selection: Selection | None,
        diagnostics: Sequence[str],
    ) -> Snapshot:
        focus = _check_focus(focus, entries)
        if selection is not None and selection.path not in entries:
            raise ValueError(f"selection is in a file outside the index: {selection.path}")
        state, changes, rebuilt = self._prefix(entries, prefix_budget_for(budget))
        return self._assemble(
            entries, state, changes, rebuilt, budget,
            list(focus), instruction, selection, list(diagnostics),
        )  # fmt: skip

    # -- the files -------------------------------------------------------------------------

    def _refresh_view(self) -> dict[str, FileEntry]:
        """The index's files, sorted by path; what changed since the last build is passed on
        to the graph and to every prefix's set of stale files."""
        view = self._view
        if view is None or not self._tracked:
            with self._dirty_lock:
                self._dirty.clear()
            fresh = _sorted(self._index.entries())
            self._view = fresh
            if view is None:
                self._file_set += 1
                return fresh
            changed, moved = _differences(view, fresh)
        else:
            with self._dirty_lock:
                dirty, self._dirty = self._dirty, set()
            changed, moved = set(), False
            for path in sorted(dirty):
                entry = self._index.get(path)  # type: ignore[attr-defined]
                old = view.get(path)
                if entry is None and old is None:
                    continue
                if entry is None:
                    del view[path]
                    moved = True
                else:
                    view[path] = entry  # the newest record, even with the same content
                    moved = moved or old is None
                    if old is not None and old.sha256 == entry.sha256:
                        continue
                changed.add(path)
            if moved:
                self._view = fresh = dict(sorted(view.items()))
            else:
                fresh = view
        self._apply(fresh, changed, moved)
        if moved:
            self._cache.forget(set(fresh))
        return fresh

    def _apply(self, entries: Mapping[str, FileEntry], changed: set[str], moved: bool) -> None:
        """Tell the graph and every prefix's stale set that ``changed`` now read as in
        ``entries``; ``moved``: files appeared or went away."""
        if changed:
            self._graph_stale |= changed
            if self._graph is None:
                self._stable_scores = None  # loaded for other content; re-keyed when needed
            for budget, stale in self._stale.items():
                stale.update(self._states[budget], entries, changed)
        if moved:
            self._file_set += 1

    # -- the graph and the stable ranking --------------------------------------------------

    def _graph_now(self, entries: Mapping[str, FileEntry]) -> RefGraph:
        """The reference graph of ``entries``, brought up to date lazily: a build that reuses
        its prefix and has no focus never needs it. A process's first graph is read from the
        state dir when one was saved for these files. The graph is held compact (int32 rows)
        and no file summary is kept beside it: a changed file's new summary is compared with
        its row (on the kernel, lists of ints and the summaries held ~0.4 GB)."""
        graph = self._graph
        if graph is None and self._state_dir is not None:
            graph = load_graph(self._state_dir, ranks_key(entries))
            if graph is not None:
                self._graph, self._graph_stale = graph, set()
                self._rows.clear()
                self._focus_scores.clear()
                return graph
        if graph is not None and not self._graph_stale:
            return graph
        rebuild = graph is None
        changed: dict[str, FileSummary] = {}  # known files whose summary changed
        for path in sorted(self._graph_stale) if graph is not None else ():
            entry = entries.get(path)
            i = graph.index_of(path)
            if entry is None or i is None:  # a file went away, or a new one
                rebuild = True
                break
            summary = summarize(entry)
            if not row_matches(graph, i, summary):
                changed[path] = summary
        self._graph_stale = set()
        if graph is not None and not rebuild and not changed:
            return graph
        # An edit that only changes what a file references patches its row; anything else
        # (files added or removed, definitions changed) rebuilds. Either way the result is the
        # graph a fresh process would build, so ranks never depend on the edit history.
        patched = patch_graph(graph, changed) if graph is not None and not rebuild else None
        if patched is not None:
            # The other files' out-edges are unchanged: keep them for the local push.
            stale = frozenset(i for p in changed if (i := patched.index_of(p)) is not None)
            self._rows = {
                key: LazyRows.after_patch(rows, patched, stale) for key, rows in self._rows.items()
            }
            self._graph = patched
        else:
            self._rows.clear()
            self._graph = reference_graph(entries)
            if self._state_dir is not None:
                save_graph(self._state_dir, ranks_key(entries), self._graph)
        self._stable_scores = None
        self._focus_scores.clear()
        return self._graph

    def _out_rows(self, graph: RefGraph, mentioned: frozenset[str]) -> OutRows:
        """Out-edges for the local push, computed on demand for the files it visits: a whole
        Walk is made only to rank everything, and not kept (on the kernel it holds ~0.4 GB)."""
        key = tuple(sorted(mentioned))
        if key not in self._rows:
            if len(self._rows) >= 8:
                self._rows.clear()
            self._rows[key] = LazyRows(graph, mentioned)
        return self._rows[key]

    def _stable(self, entries: Mapping[str, FileEntry]) -> dict[str, float]:
        """The task-free ranking with tests, tooling and generated files ranked down. It
        depends only on the files' contents, so it persists beside the prefix keyed by them:
        another process (or another budget) on the same files reads it back instead of
        building the graph."""
        if self._graph is not None:
            self._graph_now(entries)  # may find the graph changed, and drop the scores
        if self._stable_scores is None:
            key = ranks_key(entries) if self._state_dir is not None else ""
            loaded = load_ranks(self._state_dir, key) if self._state_dir is not None else None
            if loaded is not None and list(loaded[0]) == list(entries):
                scores, whys = loaded
            else:
                # Without a graph at hand, straight from the index's ids: the same scores, and
                # the graph is made when a focus or an instruction asks for it.
                ranks = stable_ranks(entries) if self._graph is None else None
                if ranks is None:
                    ranks = pagerank(self._graph_now(entries))
                scores, whys = rank_down_tests(ranks, entries)
                if self._state_dir is not None:
                    save_ranks(self._state_dir, key, scores, whys)
                # The graph and the walk's arrays left ~0.35 GB of freed temporaries in the
                # heap (numpy's below glibc's raised mmap threshold): give them back.
                return_freed_memory()
            self._stable_scores = scores
            self._stable_whys = scores, whys
        return self._stable_scores

    # -- the prefix ----------------------------------------------------------------------------

    def _text(self, path: str) -> str:
        return self._source.text(path) or ""

    def _loader(self, path: str) -> Callable[[], str]:
        return lambda: self._text(path)

    def _prefix(
        self, entries: Mapping[str, FileEntry], prefix_budget: int
    ) -> tuple[PrefixState, list[Change], bool]:
        state = self._states.get(prefix_budget)
        if state is None and self._state_dir is not None:
            state = load_state(self._state_dir, prefix_budget)
            if state is not None:
                self._track(prefix_budget, state, entries)
        why = ""
        changes: list[Change] = []
        stale = self._stale.get(prefix_budget)
        if state is None or stale is None:
            why = "no prefix yet"
        else:
            if stale.file_set != self._file_set:  # files appeared or went away: look once
                stale.compare_files(state, entries)
                stale.file_set = self._file_set
            if stale.gone:
                why = "files went away"  # the prefix would show a file that is gone
            else:
                # Files added since the prefix was built (a goal step's new module, a generated
                # file) go to the tail, like the diffs of changed ones: the prefix stays byte for
                # byte, and the stable ranking (the costly part of a rebuild) is not recomputed.
                changes = self._changes(state, entries, stale) + self._added(stale.added, entries)
                tokens = sum(c.tokens for c in changes)
                if tokens > self._settings.churn_threshold * max(state.tokens, 1):
                    why = f"{tokens} stale tokens passed the threshold"
        if why:
            logger.info("rebuilding the snapshot prefix: %s", why)
            scores = self._stable(entries)
            made = self._stable_whys  # why files were ranked down, when these scores were made here
            whys = made[1] if made is not None and made[0] is scores else None
            state = build_prefix(entries, self._text, self._cache, scores, prefix_budget, whys)
            self._diffs.clear()
            changes = []
            if self._state_dir is not None:
                save_state(self._state_dir, state)
            self._track(prefix_budget, state, entries)
        assert state is not None
        return state, changes, bool(why)

    def _track(self, budget: int, state: PrefixState, entries: Mapping[str, FileEntry]) -> None:
        self._states[budget] = state
        stale = _Stale(self._file_set)
        # C-level maps, not a loop: a restarted server does this for the kernel's 78k files
        # before its first snapshot. A file gone from ``entries`` reads as _GONE's None here and
        # is dropped after; compare_files notices it.
        files = state.files
        if files.same_paths(entries):
            entry_shas = map(attrgetter("sha256"), entries.values())
        else:
            entry_shas = map(attrgetter("sha256"), map(entries.get, files.paths, repeat(_GONE)))
        differ = compress(files.paths, map(ne, files.column("sha256"), entry_shas))
        stale.paths = {p for p in differ if p in entries}
        stale.compare_files(state, entries)
        self._stale[budget] = stale

    def _changes(
        self, state: PrefixState, entries: Mapping[str, FileEntry], stale: _Stale
    ) -> list[Change]:
        out: list[Change] = []
        for path in sorted(stale.paths):
            record = state.files[path]
            entry = entries[path]
            key = (path, record.sha256, entry.sha256, record.tier)
            change = self._diffs.get(key)
            if change is None:
                diff, tokens = "", 0
                old = state.block(path)
                if record.tier in (FULL, SIGNATURES, OVERVIEW) and old is not None:
                    new = self._cache.render(entry, record.tier, self._loader(path)) or ""
                    diff, tokens = tails.diff_block(path, old, new)
                change = Change(path, record.tier, diff, tokens)
                if len(self._diffs) >= 4096:  # many edits without a rebuild: start over
                    self._diffs.clear()
                self._diffs[key] = change
            out.append(change)
        return out

    def _added(self, paths: list[str], entries: Mapping[str, FileEntry]) -> list[Change]:
        out: list[Change] = []
        for path in paths:
            entry = entries[path]
            key = (path, "", entry.sha256, tails.NEW)
            change = self._diffs.get(key)
            if change is None:
                loader = self._loader(path)
                if is_sensitive(path):  # named, never rendered (as in the prefix)
                    full, tier = f"=== {path} ===\n[content withheld: secrets]\n\n", "path"
                else:
                    full = self._cache.render(entry, FULL, loader) or ""
                    tier = FULL
                    if (self._cache.tokens(entry, FULL, loader) or 0) > tails.NEW_FULL_TOKENS:
                        tier = SIGNATURES
                        full = self._cache.render(entry, SIGNATURES, loader) or ""
                text, tokens = tails.new_file_block(path, full, tier)
                change = Change(path, tails.NEW, text, tokens)
                if len(self._diffs) >= 4096:
                    self._diffs.clear()
                self._diffs[key] = change
            out.append(change)
        return out

    # -- the tail --------------------------------------------------------------------------------

    def _related(
        self, entries: Mapping[str, FileEntry], focus: list[str], instruction: str
    ) -> dict[str, float]:
        """Personalized ranks toward the focus files and the files defining names the
        instruction mentions. Open buffers are deliberately not seeds: every open or close
        would re-rank, and recent edits already appear in the changes section."""
        if not focus and not mentioned_identifiers(instruction):
            return {}
        graph = self._graph_now(entries)
        mentioned = frozenset(
            n for n in mentioned_identifiers(instruction) if graph.name_id(n) is not None
        )
        if not focus and not mentioned:
            return {}
        key = (tuple(focus), tuple(sorted(mentioned)))
        if key not in self._focus_scores:
            weights: dict[str, float] = {p: 1.0 for p in focus}
            for name in sorted(mentioned):
                definers = graph.definers(bisect_left(graph.names, name))
                if len(definers) <= 5:
                    for i in definers:
                        path = graph.paths[i]
                        weights[path] = weights.get(path, 0.0) + 0.5
            if len(self._focus_scores) >= 32:
                self._focus_scores.clear()
            self._focus_scores[key] = local_pagerank(self._out_rows(graph, mentioned), weights)
        return self._focus_scores[key]

    def _assemble(
        self,
        entries: Mapping[str, FileEntry],
        state: PrefixState,
        changes: list[Change],
        rebuilt: bool,
        budget: int,
        focus: list[str],
        instruction: str,
        selection: Selection | None,
        diagnostics: list[str],
    ) -> Snapshot:
        notes: list[str] = []
        rank_of = state.rank_of
        small = [
            b
            for b in (
                tails.diagnostics_block(diagnostics),
                selection
                and tails.selection_block(
                    selection, self._text(selection.path), rank_of(selection.path)
                ),
            )
            if b
        ]
        # A focus file the prefix shows in full, unchanged, is referred to, not copied again.
        in_prefix = {
            p
            for p in focus
            if (record := state.files.get(p)) is not None
            and record.tier == FULL
            and record.sha256 == entries[p].sha256
            and not is_sensitive(p)
        }
        full_tokens = {p: self._cache.tokens(entries[p], FULL, self._loader(p)) or 0 for p in focus}
        heading = Block.of(tails.FOCUS_HEADING) if focus else None
        need = sum(t for p, t in full_tokens.items() if p not in in_prefix)
        need += heading.tokens if heading else 0
        need_small = sum(b.tokens for b in small)
        if need + need_small <= budget:
            room = budget - need - need_small
        else:
            room = 0
            notes.append("the focus does not fit with the stable prefix: prefix left out")
        prefix_text, prefix_tokens, dropped = (
            (state.text, state.tokens, []) if state.tokens <= room else state.cut(room)
        )
        if dropped and prefix_text:
            notes.append(f"{len(dropped)} prefix files cut to make room for the focus")
        left = budget - prefix_tokens

        focus_blocks: list[Block] = []
        # path -> sha256 of the text this snapshot shows in full (prefix or focus), so a coder
        # refers to that copy instead of sending the file again.
        shown: dict[str, str] = {
            p: sha for p, sha in state.full_paths() if p not in dropped and sha == entries[p].sha256
        }
        if heading and heading.tokens <= left:
            left -= heading.tokens
            for path in focus:
                if path in in_prefix and path not in dropped:
                    ref = tails.focus_reference(path, rank_of(path))
                    if ref.tokens <= left:
                        focus_blocks.append(ref)
                        left -= ref.tokens
                        shown[path] = entries[path].sha256
                    continue
                loader = self._loader(path)
                full = self._cache.render(entries[path], FULL, loader) or ""
                fb = tails.focus_block(path, loader(), full, full_tokens[path], left, rank_of(path))
                if fb is None:
                    notes.append(f"focus file {path} left out: no room left")
                    continue
                if fb.tokens < full_tokens[path]:
                    notes.append(f"focus file {path} truncated to {fb.tokens} tokens")
                elif not is_sensitive(path):
                    shown[path] = entries[path].sha256
                focus_blocks.append(fb)
                left -= fb.tokens
            if focus_blocks:
                focus_blocks.insert(0, heading)
            else:
                left += heading.tokens
        kept_small = []
        for b in small:
            if b.tokens <= left:
                kept_small.append(b)
                left -= b.tokens
            else:
                notes.append("the selection or diagnostics did not fit and were left out")

        sent = state.file_set() - set(dropped) if dropped else state.file_set()
        change_blocks, left = tails.change_blocks(changes, set(focus), sent, left, notes)
        related_blocks, left = self._related_blocks(
            entries, state, changes, focus, instruction, sent, left
        )
        blocks = change_blocks + related_blocks + focus_blocks + kept_small
        tail_text = "".join(b.text for b in blocks)
        tail_tokens = sum(b.tokens for b in blocks)

        tail_entries = [b.entry for b in blocks if b.entry is not None]
        listed = {e.path for e in tail_entries}  # an added file is in no prefix row
        for change in changes:  # an added file the tail had no room for is still listed
            if change.prefix_tier == tails.NEW and change.path not in listed:
                tail_entries.append(
                    tails.tail_entry(change.path, "omitted", "added since the prefix: no room")
                )
        cut = set(dropped)
        prefix_hash = (
            state.hash if not dropped else hashlib.sha256(prefix_text.encode()).hexdigest()
        )
        manifest = Manifest(
            entries=lambda: state.manifest_entries(cut) + tail_entries,
            budget=budget,
            prefix_tokens=prefix_tokens,
            tail_tokens=tail_tokens,
            prefix_hash=prefix_hash,
            rebuilt=rebuilt,
            stale_tokens=sum(c.tokens for c in changes),
            notes=notes,
        )
        return Snapshot(prefix_text, tail_text, prefix_hash, manifest, shown)

    def _related_blocks(
        self,
        entries: Mapping[str, FileEntry],
        state: PrefixState,
        changes: list[Change],
        focus: list[str],
        instruction: str,
        sent: frozenset[str],
        left: int,
    ) -> tuple[list[Block], int]:
        scores = self._related(entries, focus, instruction)
        if not scores:
            return [], left
        skip = set(focus) | set(overview_files(entries))
        candidates = [p for p in order(scores) if p not in skip and not is_sensitive(p)]

        def signatures(path: str) -> tuple[str, int]:
            loader = self._loader(path)
            text = self._cache.render(entries[path], SIGNATURES, loader) or ""
            return text, self._cache.tokens(entries[path], SIGNATURES, loader) or 0

        return tails.related_blocks(
            candidates[:NEIGHBOURS], scores, state, {c.path for c in changes}, sent, left,
            signatures,
        )  # fmt: skip


def _check_focus(focus: Sequence[str], entries: Mapping[str, FileEntry]) -> list[str]:
    out: list[str] = []
    for path in focus:
        if path.startswith("/") or "\\" in path or ".." in path.split("/"):
            raise ValueError(f"focus paths are relative to the workspace root: {path!r}")
        if path not in entries:
            raise ValueError(f"focus file is not in the workspace index: {path}")
        if path not in out:
            out.append(path)
    return out


class _Stale:
    """The files whose content differs from what one prefix was built from."""

    def __init__(self, file_set: int) -> None:
        self.file_set = file_set  # the builder's file-set count when last checked
        self.paths: set[str] = set()
        self.added: list[str] = []  # files the prefix does not know (shown in the tail)
        self.gone = False  # a file the prefix shows went away: it must be rebuilt

    def compare_files(self, state: PrefixState, entries: Mapping[str, FileEntry]) -> None:
        """Which files appeared since ``state`` was built, and whether any it lists went away
        (one pass over the files; only when the file set changed)."""
        files = state.files
        self.added = [] if files.same_paths(entries) else files.not_in(entries)
        self.gone = len(entries) - len(self.added) != len(files)

    def update(
        self, state: PrefixState, entries: Mapping[str, FileEntry], paths: Iterable[str]
    ) -> None:
        files = state.files
        for path in paths:
            record = files.get(path)
            entry = entries.get(path)
            if record is not None and entry is not None and entry.sha256 != record.sha256:
                self.paths.add(path)
            else:
                self.paths.discard(path)


def _subscribe(index: IndexView, builder: SnapshotBuilder) -> bool:
    """Follow the index's change notices when it has them (and ``get``). The index holds only a
    weak reference: a builder that is dropped is not kept alive, and its notice is removed
    (a goal run builds one per step, for the life of the server's index)."""
    subscribe = getattr(index, "subscribe", None)
    if not callable(subscribe) or not callable(getattr(index, "get", None)):
        return False
    ref = weakref.ref(builder)

    def notify(paths: set[str]) -> None:
        target = ref()
        if target is not None:
            target._note(paths)

    unsubscribe = subscribe(notify)
    if callable(unsubscribe):
        weakref.finalize(builder, unsubscribe)
    return True


def _sorted(entries: dict[str, FileEntry]) -> dict[str, FileEntry]:
    keys = list(entries)
    if keys != sorted(keys):  # WorkspaceIndex sorts already; other views may not
        return dict(sorted(entries.items()))
    return entries


def _differences(
    old: Mapping[str, FileEntry], new: Mapping[str, FileEntry]
) -> tuple[set[str], bool]:
    """Paths whose content differs (or that exist in one only), and whether the sets differ."""
    changed = {
        p
        for p in old.keys() | new.keys()
        if (a := old.get(p)) is None or (b := new.get(p)) is None or a.sha256 != b.sha256
    }
    return changed, old.keys() != new.keys()


def _overlay(
    entries: dict[str, FileEntry], view: IndexView
) -> tuple[dict[str, FileEntry], set[str], bool]:
    """The files as ``view`` reads them: (entries, paths that differ from ``entries``, whether
    files appear or go away). A TaskView names its pinned paths, so only those are looked at."""
    pinned = getattr(view, "pinned", None)
    get = getattr(view, "get", None)
    if not isinstance(pinned, Mapping) or not callable(get):
        fresh = _sorted(view.entries())
        changed, moved = _differences(entries, fresh)
        return fresh, changed, moved
    out = dict(entries)
    changed: set[str] = set()
    moved = False
    for path in sorted(pinned):
        entry, old = get(path), entries.get(path)
        if entry is None and old is None:
            continue
        if entry is None:
            del out[path]
            moved = True
        elif old is None:
            out[path] = entry
            moved = True
        elif entry.sha256 == old.sha256:
            continue
        else:
            out[path] = entry
        changed.add(path)
    return (dict(sorted(out.items())) if moved else out), changed, moved
