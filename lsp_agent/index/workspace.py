"""WorkspaceIndex: every text file of a workspace, its symbols, and incremental updates.

One lock guards the in-memory state; file reading and parsing for a build happen outside it (on
a process pool for a cold start), so readers are blocked only while results are swapped in.
Open editor buffers override disk content until they are closed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from operator import attrgetter
from pathlib import Path

from lsp_agent.config import IndexSettings, workspace_cache_dir
from lsp_agent.index import codec, languages
from lsp_agent.index.cache import SKIP_MARK, CachedRow, IndexCache, Row
from lsp_agent.index.discovery import IgnoreRules, discover, read_source, skip_reason
from lsp_agent.index.incremental import BufferTrees
from lsp_agent.index.loader import SkipStamp, load_entries
from lsp_agent.index.model import Definition, FileEntry, IndexStats, Reference
from lsp_agent.index.pool import effective_jobs, gc_paused, return_freed_memory
from lsp_agent.index.symbols import build_entry
from lsp_agent.index.symtab import NameTable, lookup, symbols_of

log = logging.getLogger(__name__)

_DEFAULT_CACHE = Path("<default>")
_IGNORE_FILES = (".gitignore",)


def relative_path(root: Path, path: str | Path) -> str:
    """``path`` (absolute, or relative to ``root``) as a POSIX path relative to ``root``.

    Raises ValueError when it lies outside the root. ``""`` is the root itself.
    """
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root / candidate
    normal = Path(os.path.normpath(candidate))
    try:
        rel = normal.relative_to(root).as_posix()
    except ValueError:
        # Maybe the same place through a symlinked spelling of the root (/tmp -> /private/tmp).
        try:
            rel = normal.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            raise ValueError(f"{path} is outside the workspace root {root}") from None
    return "" if rel == "." else rel


def heads_snapshot(
    entries: dict[str, FileEntry], skips: dict[str, SkipStamp], table: NameTable
) -> dict[str, CachedRow]:
    """What the cache's rows hold for these entries and skips, names as ids into ``table``
    (cache.IndexCache.write_heads). An entry with names elsewhere is left out (parsed again)."""
    heads: dict[str, CachedRow] = {}
    for path, entry in entries.items():
        head = codec.compact_head_of(entry, table)
        if head is not None:
            heads[path] = (entry.size, entry.mtime_ns, entry.sha256, head)
    for path, ((size, mtime_ns), reason) in skips.items():
        heads[path] = (size, mtime_ns, SKIP_MARK, reason)
    return heads


HEADS_DELAY = 5.0  # seconds after the last cache write before the heads snapshot is rewritten


class WorkspaceIndex:
    def __init__(
        self,
        root: Path,
        settings: IndexSettings = IndexSettings(),  # noqa: B008 - frozen, safe to share
        cache_path: Path | None = _DEFAULT_CACHE,
    ) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ValueError(f"workspace root {root} is not a directory")
        self.settings = settings
        if cache_path is _DEFAULT_CACHE:
            cache_path = workspace_cache_dir(self.root) / "index.sqlite"
        self.cache_path = cache_path
        self._cache = (
            IndexCache(cache_path, self.root, max(settings.max_file_bytes, 1 << 30))
            if cache_path is not None
            else None
        )
        self._lock = threading.RLock()
        self._build_lock = threading.Lock()
        self._parse_lock = threading.Lock()
        self._rules = IgnoreRules.for_settings(self.root, settings)
        self._entries: dict[str, FileEntry] = {}  # sorted by path unless _unsorted
        self._unsorted = False
        self._table = NameTable()  # the names of every entry's symbols (symtab.py)
        # Paths changed by refresh/update while a build reads the disk: its swap keeps them.
        self._changed_in_build: set[str] | None = None
        self._buffers: dict[str, str] = {}
        # Per open buffer, the entry the disk's version had when it opened (None: no entry).
        self._disk_entries: dict[str, FileEntry | None] = {}
        self._trees = BufferTrees()  # parse trees of open buffers, for incremental re-parsing
        self._skipped: Counter[str] = Counter()
        self._last = IndexStats()
        self._cached_paths: set[str] = set()  # paths the cache holds rows for
        # binary/oversized files seen by the last build: path -> ((size, mtime_ns), reason)
        self._skips: dict[str, SkipStamp] = {}
        self._subscribers: list[Callable[[set[str]], None]] = []
        self.generation = 0
        # Cache rows written and the entries they come from change together under this lock,
        # so a heads snapshot taken under it matches the rows it is stamped for.
        self._write_lock = threading.Lock()
        self._heads_timer: threading.Timer | None = None
        self.heads_delay = HEADS_DELAY

    # ----------------------------------------------------------------- reading
    def _rel(self, path: str | Path) -> str:
        rel = relative_path(self.root, path)
        if not rel:
            raise ValueError("the workspace root is not a file")
        return rel

    def entries(self) -> dict[str, FileEntry]:
        with self._lock:
            if self._unsorted:  # a file was added since the last sort (78k paths: ~40 ms)
                self._entries = dict(sorted(self._entries.items()))
                self._unsorted = False
            return self._entries.copy()

    def get(self, path: str) -> FileEntry | None:
        with self._lock:
            return self._entries.get(self._rel(path))

    def text(self, path: str) -> str | None:
        rel = self._rel(path)
        with self._lock:
            if rel in self._buffers:
                return self._buffers[rel]
        data = read_source(self.root / rel, max(self.settings.max_file_bytes, 1 << 30))
        return None if isinstance(data, str) else data.decode("utf-8", "replace")

    @property
    def ignore_rules(self) -> IgnoreRules:
        """The rules of the last build (for messages such as discovery.sparse_ignore_warning)."""
        with self._lock:
            return self._rules

    def is_ignored(self, path: str) -> bool:
        rel = relative_path(self.root, path)
        with self._lock:
            return bool(rel) and self._rules.is_ignored(rel, (self.root / rel).is_dir())

    # Lookups scan the files' name summaries (a bisect each: ~40 ms over 78k files) and decode
    # only the files that have the name, outside the lock: no name table is kept in memory.
    def definitions(self, name: str) -> list[tuple[str, Definition]]:
        with self._lock:
            entries = self._entries.copy()
        return lookup(entries, name, references=False)

    def references(self, name: str) -> list[tuple[str, Reference]]:
        with self._lock:
            entries = self._entries.copy()
        return lookup(entries, name, references=True)

    def grep(
        self, pattern: str, *, regex: bool = False, limit: int = 200
    ) -> list[tuple[str, int, str]]:
        """(path, 0-based line, line text) for lines containing ``pattern``."""
        try:
            compiled = re.compile(pattern if regex else re.escape(pattern))
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        hits: list[tuple[str, int, str]] = []
        for path in self.entries():
            text = self.text(path)
            if text is None or not compiled.search(text):
                continue
            for number, line in enumerate(text.splitlines()):
                if compiled.search(line):
                    hits.append((path, number, line))
                    if len(hits) >= limit:
                        return hits
        return hits

    @property
    def stats(self) -> IndexStats:
        with self._lock:
            entries = list(self._entries.values())
            skipped = dict(sorted(self._skipped.items()))
            last = self._last
        # Column by column with C-level maps: a loop over the kernel's 78k entries, each
        # ``len`` a Python method of the lazy records, took ~0.1 s of every warm start.
        languages_count = Counter(filter(None, map(_language, entries)))
        definitions = _record_count(entries, _n_definitions, _definitions)
        references = _record_count(entries, _n_references, _references)
        return dataclasses.replace(
            last,
            files=len(entries),
            languages=dict(sorted(languages_count.items())),
            definitions=definitions,
            references=references,
            skipped=skipped,
            decode_errors=sum(map(_decode_errors, entries)),
            generated=sum(map(_generated, entries)),
        )

    # ---------------------------------------------------------------- changing
    def subscribe(self, callback: Callable[[set[str]], None]) -> Callable[[], None]:
        """Call ``callback`` with the paths of every change; returns what unsubscribes it."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _notify(self, changed: set[str]) -> None:
        if not changed:
            return
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(set(changed))
            except Exception:
                log.exception("index subscriber %r failed", callback)

    def _put(self, rel: str, entry: FileEntry | None) -> None:
        """Replace one file's entry (None removes it); callers hold the lock."""
        if self._changed_in_build is not None:
            self._changed_in_build.add(rel)
        if entry is None:
            self._entries.pop(rel, None)
            return
        if rel not in self._entries:
            self._unsorted = True
        self._entries[rel] = entry

    def build(
        self,
        *,
        jobs: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> IndexStats:
        """(Re)discover and index the whole workspace; reuses the cache and unchanged entries."""
        with self._build_lock:
            started = time.perf_counter()
            with self._lock:
                self._changed_in_build = set()
                # A build may re-read any file or start a new name table: a buffer closed
                # after it reads its file again rather than restore an entry from before.
                self._disk_entries.clear()
            try:
                return self._build(started, jobs, progress)
            finally:
                with self._lock:
                    self._changed_in_build = None

    def _build(
        self, started: float, jobs: int | None, progress: Callable[[int, int], None] | None
    ) -> IndexStats:
        """The body of ``build``; the caller holds the build lock. The cyclic collector is
        paused throughout: a build makes and drops hundreds of thousands of acyclic objects
        (found files, entries, sorted items), and its collections found nothing to free while
        they walked every one of them (0.58 s of a 3 s warm start of the kernel)."""
        with gc_paused():
            return self._build_paused(started, jobs, progress)

    def _build_paused(
        self, started: float, jobs: int | None, progress: Callable[[int, int], None] | None
    ) -> IndexStats:
        rules = IgnoreRules.for_settings(self.root, self.settings)
        found = discover(
            self.root, rules, self.settings.max_file_bytes, max_files=self.settings.max_files
        )
        with self._lock:
            known = {path: entry for path, entry in self._entries.items() if not entry.from_buffer}
        workers = effective_jobs(jobs if jobs is not None else self.settings.jobs)
        loaded = load_entries(
            self.root,
            found.files,
            known=known,
            known_skips=self._skips,
            cache=self._cache,
            max_file_bytes=self.settings.max_file_bytes,
            workers=workers,
            table=self._table,
            progress=progress,
        )
        entries, skipped = loaded.entries, loaded.skipped
        parsed, reused = loaded.parsed, loaded.reused
        skipped.update(found.skipped)
        self._skips = loaded.skips
        if self._cache is not None:  # the rows were written while loading; drop the rest
            keep = entries.keys() | loaded.skips.keys()
            self._cache.write((), loaded.cached_paths - keep)
            if not self._cache.heads_current:  # the next warm start reads one blob
                heads = heads_snapshot(loaded.entries, loaded.skips, loaded.table)
                self._cache.write_heads([loaded.table.pack()], heads)
            with self._lock:
                self._cached_paths = set(keep)
        with self._lock:
            for path, entry in self._entries.items():
                # Open buffers still win, including unsaved files that are not on disk.
                if entry.from_buffer and not rules.is_ignored(path):
                    entries[path] = entry
            # A watcher refresh (or a buffer) that ran while this build read the disk is
            # newer than what the build read: it wins, removals included.
            for path in self._changed_in_build or ():
                if path in self._entries:
                    entries[path] = self._entries[path]
                else:
                    entries.pop(path, None)
            if self._entries:
                changed = {
                    path
                    for path in entries.keys() | self._entries.keys()
                    if self._entries.get(path) != entries.get(path)
                }
            else:  # a process's first build: every entry is new
                changed = set(entries)
            self._rules = rules
            self._entries = dict(sorted(entries.items()))
            self._unsorted = False
            self._table = loaded.table
            self._skipped = skipped
            if changed:
                self.generation += 1
            self._last = IndexStats(
                parsed=parsed, from_cache=reused, seconds=time.perf_counter() - started
            )
            stats = self.stats
        if parsed:  # the heap churned: pool results, strings and blobs now dropped
            return_freed_memory()
        self._notify(changed)
        log.info(
            "indexed %s: %d files (%d parsed, %d cached) in %.2f s",
            self.root,
            stats.files,
            parsed,
            reused,
            stats.seconds,
        )
        return stats

    def update(self, path: str, text: str) -> FileEntry | None:
        """An open editor buffer's text; it overrides disk until ``close_buffer``.

        Returns the new entry, or None when the path is ignored, too large or binary (its text
        is still served). Parsing happens outside the index lock: readers (snapshot builds,
        tool lookups) never wait for a buffer's parse."""
        rel = self._rel(path)
        data = text.encode("utf-8", "surrogatepass")
        with self._lock:
            if rel not in self._buffers:
                self._disk_entries[rel] = self._entries.get(rel)
            self._buffers[rel] = text
            unindexed = self._rules.is_ignored(rel) or skip_reason(
                data, self.settings.max_file_bytes
            )
            old = self._entries.get(rel)
            if unindexed:
                if old is None:
                    return None
                # The buffer overrides disk: past the limits, no entry (not the disk's, stale).
                self._put(rel, None)
                self.generation += 1
        if unindexed:
            self._notify({rel})
            return None
        digest = hashlib.sha256(data).hexdigest()
        if old is not None and old.from_buffer and (old.size, old.sha256) == (len(data), digest):
            return old
        with self._parse_lock:  # one buffer parse at a time: the incremental trees are shared
            language = languages.language_for_path(rel)
            symbols = self._trees.symbols(rel, language, data) if language else None
            entry = build_entry(
                rel,
                language,
                data,
                mtime_ns=time.time_ns(),
                from_buffer=True,
                symbols=symbols,
                table=self._table,
                previous=old,
            )
        with self._lock:
            if self._buffers.get(rel) is not text:
                return entry  # a newer text (or a close) came meanwhile: it decides the entry
            self._put(rel, entry)
            self.generation += 1
        self._notify({rel})
        return entry

    def unavailable(self, path: str) -> str | None:
        """Why no task can run on ``path`` ("ignored", "too_large", "binary", "not indexed"),
        or None when it can: code actions are offered only where a task can run. Lock-free
        (single dict and attribute reads): the server asks on its event loop, and the lock
        can be held for a while (the first symbol-table build)."""
        rel = self._rel(path)
        if rel in self._entries:
            return None
        if self._rules.is_ignored(rel):
            return "ignored"
        text = self._buffers.get(rel)
        if text is not None:
            reason = skip_reason(
                text.encode("utf-8", "surrogatepass"), self.settings.max_file_bytes
            )
            return reason or "not indexed"
        return "not indexed"

    def close_buffer(self, path: str) -> None:
        rel = self._rel(path)
        with self._parse_lock:
            self._trees.discard(rel)
        with self._lock:
            if self._buffers.pop(rel, None) is None:
                return
            disk = self._disk_entries.pop(rel, None)
        if disk is None or not self._restore(rel, disk):
            self.refresh([rel])

    def _restore(self, rel: str, disk: FileEntry) -> bool:
        """Put back the entry the disk's version had when the buffer opened, when the file's
        size and mtime are still those: closing a buffer that was never saved then parses
        nothing and writes no cache row. A write would leave the cache's heads snapshot stale
        and start its rewrite (~1 s holding the interpreter on the kernel) five seconds later,
        under the user's next edits."""
        try:
            st = (self.root / rel).stat()
        except OSError:
            return False
        if (st.st_size, st.st_mtime_ns) != (disk.size, disk.mtime_ns):
            return False
        with self._lock:
            if rel in self._buffers or self._rules.is_ignored(rel):
                return False  # opened again meanwhile, or the rules changed: read the disk
            restored = self._entries.get(rel) is not disk
            self._put(rel, disk)
            if restored:
                self.generation += 1
        if restored:
            self._notify({rel})
        return True

    def refresh(self, paths: Iterable[str]) -> set[str]:
        """Re-read ``paths`` from disk (created, modified, deleted, renamed files or folders).

        Returns the paths whose entries changed. Open buffers keep winning until closed."""
        rels: set[str] = set()
        for path in paths:
            try:
                rels.add(relative_path(self.root, path))
            except ValueError:
                log.debug("ignoring change outside the root: %s", path)
        if any(self._changes_rules(rel) for rel in rels):
            # The ignore rules changed: files may appear or vanish anywhere below.
            before = self.entries()
            self.build()
            after = self.entries()
            return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
        changed: set[str] = set()
        rows: list[Row] = []
        removed: list[str] = []
        with self._write_lock:
            for rel in sorted(rels):
                if rel.split("/")[0] == ".git":
                    continue
                self._refresh_one(rel, changed, rows, removed)
            if self._cache is not None and (rows or removed):
                if self._cache.write(rows, removed):
                    self._release(rows)
                with self._lock:
                    self._cached_paths.update(row[0] for row in rows)
                    self._cached_paths.difference_update(removed)
                self._schedule_heads()
        if changed:
            with self._lock:
                self.generation += 1
        self._notify(changed)
        return changed

    def _changes_rules(self, rel: str) -> bool:
        if rel in ("", ".git/info/exclude"):
            return True
        if rel.rsplit("/", 1)[-1] not in _IGNORE_FILES:
            return False
        with self._lock:  # a .gitignore inside an ignored folder (node_modules) changes nothing
            return not self._rules.is_ignored(rel)

    def _refresh_one(
        self, rel: str, changed: set[str], rows: list[Row], removed: list[str]
    ) -> None:
        full = self.root / rel
        with self._lock:
            ignored = self._rules.is_ignored(rel, full.is_dir())
            rules = self._rules
        if not ignored and full.is_dir():
            found = discover(self.root, rules, self.settings.max_file_bytes, start=rel)
            present = {f.path for f in found.files}
            with self._lock:
                gone = [p for p in self._entries if p.startswith(rel + "/") and p not in present]
            for path in gone:
                self._drop(path, changed, removed)
            for item in found.files:
                with self._lock:
                    known = self._entries.get(item.path)
                if known is not None and (known.size, known.mtime_ns) == (item.size, item.mtime_ns):
                    continue  # a folder event (rename, checkout): unchanged files stay as they are
                self._refresh_file(item.path, changed, rows, removed)
            return
        if ignored or not full.exists():
            with self._lock:
                below = [p for p in self._entries if p == rel or p.startswith(rel + "/")]
            for path in below:
                self._drop(path, changed, removed)
            return
        self._refresh_file(rel, changed, rows, removed)

    def _drop(self, rel: str, changed: set[str], removed: list[str]) -> None:
        with self._lock:
            if rel in self._buffers or rel not in self._entries:
                return
            self._put(rel, None)
        changed.add(rel)
        removed.append(rel)

    def _refresh_file(
        self, rel: str, changed: set[str], rows: list[Row], removed: list[str]
    ) -> None:
        full = self.root / rel
        try:
            st = full.stat()
            outside = not full.resolve().is_relative_to(self.root)
        except OSError:
            self._drop(rel, changed, removed)
            return
        data = read_source(full, self.settings.max_file_bytes)
        if outside or isinstance(data, str):
            self._drop(rel, changed, removed)
            return
        with self._lock:
            if rel in self._buffers:
                return
            old = self._entries.get(rel)
        sha = hashlib.sha256(data).hexdigest()
        if old is not None and old.sha256 == sha:
            entry = dataclasses.replace(old, mtime_ns=st.st_mtime_ns)
        else:
            language = languages.language_for_path(rel)
            entry = build_entry(
                rel,
                language,
                data,
                mtime_ns=st.st_mtime_ns,
                sha256=sha,
                table=self._table,
                previous=old,
            )
        with self._lock:
            if rel in self._buffers:  # opened while we parsed
                return
            self._put(rel, entry)
        if entry != old and (old is None or old.sha256 != sha):
            changed.add(rel)
        symbols = symbols_of(entry)
        held = symbols is None or symbols.holds_records()
        head = codec.encode_head(codec.head_of(entry))
        records = codec.records_of(entry) if held else None  # else the cache has them
        rows.append((rel, entry.size, entry.mtime_ns, entry.sha256, head, records))

    def _schedule_heads(self) -> None:
        """Rewrite the cache's heads snapshot ``heads_delay`` seconds after the last write.
        Every refresh (a save) makes the snapshot stale, and a start that finds it stale reads
        and decodes every row instead: on the kernel 9.4 s and 659 MB held instead of 2.7 s and
        262 MB. Debounced: a burst of saves (a checkout) rewrites it once."""
        with self._lock:
            if self._heads_timer is not None:
                self._heads_timer.cancel()
            timer = threading.Timer(self.heads_delay, self.write_heads)
            timer.daemon = True  # an exit before it fires costs the next start one slow read
            self._heads_timer = timer
        timer.start()

    def write_heads(self) -> bool:
        """Bring the cache's heads snapshot up to date with its rows, when this process saw
        every write since it loaded (else the next full build does it). Open buffers' entries
        are left out: the rows hold the disk's version, which the next start parses again.
        Returns whether a snapshot was written."""
        cache = self._cache
        if cache is None or not cache.path.exists():  # gone (a test's tree, a cleared cache)
            return False
        if not self._build_lock.acquire(blocking=False):
            return False  # a running build writes the snapshot itself
        try:
            with self._write_lock:  # the entries and the generation of the rows they match
                stamp = cache.generation
                if cache.heads_current or stamp is None:
                    return False
                with self._lock:
                    entries = {p: e for p, e in self._entries.items() if not e.from_buffer}
                    skips = dict(self._skips)
                    table = self._table
        finally:
            self._build_lock.release()
        # Outside the locks (~1 s on the kernel): a refresh meanwhile moves the generation,
        # and the cache then refuses this snapshot. packed_pieces(), not pack(): a server
        # that unpacked its names keeps using them.
        # The collector paused: the snapshot makes ~160k tuples beside two 78k dicts on the
        # kernel, and each young collection would walk those dicts again, on the thread that
        # holds the interpreter while the server's edits wait.
        with gc_paused():
            heads = heads_snapshot(entries, skips, table)
            cache.write_heads(table.packed_pieces(), heads, generation=stamp)
        return cache.heads_current

    def _release(self, rows: list[Row]) -> None:
        """The cache has these rows: their entries read records from it from now on."""
        assert self._cache is not None
        with self._lock:
            for row in rows:
                entry = self._entries.get(row[0])
                symbols = symbols_of(entry) if entry is not None else None
                if symbols is not None and symbols.holds_records() and entry.sha256 == row[3]:
                    symbols.release(self._cache, (entry.path, entry.sha256, entry.language))


_language = attrgetter("language")
_decode_errors = attrgetter("decode_errors")
_generated = attrgetter("generated")
_definitions = attrgetter("definitions")
_references = attrgetter("references")
# The counts the lazy records know without decoding (symtab._Records over FileSymbols).
_n_definitions = attrgetter("definitions.symbols.n_definitions")
_n_references = attrgetter("references.symbols.n_references")


def _record_count(
    entries: list[FileEntry], counted: attrgetter[int], records: attrgetter[object]
) -> int:
    """The entries' definitions (or references) counted: ``counted`` (the symbols' count)
    when every entry's records are the index's lazy ones, else ``len`` of each ``records``."""
    try:
        return sum(map(counted, entries))
    except AttributeError:  # records made by hand (tests, a task's view): tuples
        return sum(map(len, map(records, entries)))  # type: ignore[arg-type]
