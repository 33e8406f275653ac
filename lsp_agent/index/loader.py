"""Entries for the files discovery found: reused when size and mtime match (from memory or
the cache), otherwise read and parsed (on the process pool when it pays).

Pure of WorkspaceIndex state: it receives what is known and returns what it found, and the
index swaps the result in under its lock. Parsed files stream into the cache in batches as
they arrive; once a batch is written its entries let go of their records (the cache has them),
so a cold build holds names and counts only, never every file's records at once.
"""

from __future__ import annotations

import dataclasses
import logging
import marshal
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lsp_agent.index import codec
from lsp_agent.index.cache import CACHED_SKIPS, SKIP_MARK, WRITE_BATCH, IndexCache, Row
from lsp_agent.index.discovery import FoundFile
from lsp_agent.index.model import FileEntry
from lsp_agent.index.pool import Job, run_jobs, should_use_pool
from lsp_agent.index.symtab import FileSymbols, NameTable, symbols_of

log = logging.getLogger(__name__)

SkipStamp = tuple[tuple[int, int], str]  # ((size, mtime_ns), reason) of a skipped file


@dataclass
class Loaded:
    entries: dict[str, FileEntry] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)  # read-time skips by reason
    skips: dict[str, SkipStamp] = field(default_factory=dict)  # binary/oversized, remembered
    cached_paths: set[str] = field(default_factory=set)  # paths the cache held before
    table: NameTable = field(default_factory=NameTable)  # the names of ``entries``
    parsed: int = 0
    reused: int = 0


def load_entries(
    root: Path,
    files: Sequence[FoundFile],
    *,
    known: dict[str, FileEntry],
    known_skips: dict[str, SkipStamp],
    cache: IndexCache | None,
    max_file_bytes: int,
    workers: int,
    table: NameTable,
    progress: Callable[[int, int], None] | None = None,
) -> Loaded:
    """``table`` holds the names of ``known``; with nothing known (a first build) the cache's
    heads snapshot may bring its own table, which the result then carries."""
    total = len(files)
    cached, packed = cache.load(heads=not known) if cache is not None else ({}, None)
    if packed is not None:
        table = NameTable(packed)
    out = Loaded(cached_paths=set(cached), table=table)
    entries, skipped = out.entries, out.skipped
    sink = _RowSink(cache)
    previous: dict[str, FileEntry] = {}
    todo: list[Job] = []
    reused = 0
    for found in files:
        stamp = (found.size, found.mtime_ns)
        entry = known.get(found.path)
        if entry is not None and (entry.size, entry.mtime_ns) == stamp:
            entries[found.path] = entry
            reused += 1
            continue
        row = cached.get(found.path)
        # Binary and oversized files are remembered too, so a warm start does not read them.
        reason = known_skips.get(found.path, ((-1, -1), ""))
        if row is not None and row[2] == SKIP_MARK:
            why = row[3]
            reason = (row[0], row[1]), why.decode("ascii", "replace") if type(why) is bytes else why
            row = None
        if reason[0] == stamp:
            skipped[reason[1]] += 1
            out.skips[found.path] = reason
            continue
        if row is not None:
            size, mtime_ns, sha, head = row
            try:
                if type(head) is bytes:  # a row of ``files``; the heads snapshot is decoded
                    head = codec.decode_head(head)
                entry = codec.entry_from_head(
                    found.path, size, mtime_ns, sha, head, table=table, source=cache
                )
            except (ValueError, EOFError, TypeError) as exc:
                log.warning("damaged cache record for %s (%s); re-reading", found.path, exc)
                entry = None
            if entry is not None and (size, mtime_ns) == stamp:
                entries[found.path] = entry
                reused += 1
                continue
        if entry is not None:
            previous[found.path] = entry
        todo.append(Job(found.path, found.size, found.mtime_ns, entry and entry.sha256))
    done = reused
    if progress:
        progress(done, total)

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress:
            progress(done, total)

    if not should_use_pool(todo, workers):
        workers = 1
    stamps = {job.path: (job.size, job.mtime_ns) for job in todo}
    for path, result in run_jobs(
        str(root), todo, max_file_bytes, workers=workers, progress=advance
    ):
        if isinstance(result, str):
            skipped[result] += 1
            if result in CACHED_SKIPS:  # "unreadable" may heal without a new mtime
                out.skips[path] = (stamps[path], result)
                size, mtime_ns = stamps[path]
                sink.add((path, size, mtime_ns, SKIP_MARK, result.encode("ascii"), None), None)
            continue
        if result is None:  # touched but identical: keep the symbols, record the new mtime
            entry = dataclasses.replace(previous[path], mtime_ns=stamps[path][1])
            symbols = symbols_of(entry)
            held = symbols is None or symbols.holds_records()
            records = codec.records_of(entry) if held else None  # else the cache has them
            head = codec.encode_head(codec.head_of(entry))
            reused += 1
        else:
            size, sha, head, records = result
            entry = codec.entry_from_head(
                path, size, stamps[path][1], sha, marshal.loads(head), table=table, blob=records
            )
        entries[path] = entry
        sink.add((path, entry.size, entry.mtime_ns, entry.sha256, head, records), entry)
    sink.flush()
    out.parsed = len(entries) - reused
    out.reused = reused
    return out


class _RowSink:
    """Cache rows written in batches; a written entry's records are then read from the cache."""

    def __init__(self, cache: IndexCache | None) -> None:
        self.cache = cache
        self.rows: list[Row] = []
        self.entries: list[FileEntry] = []

    def add(self, row: Row, entry: FileEntry | None) -> None:
        if self.cache is None:
            return
        self.rows.append(row)
        if entry is not None:
            self.entries.append(entry)
        if len(self.rows) >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.cache is None or not self.rows:
            return
        if self.cache.write(self.rows):
            for entry in self.entries:
                symbols = symbols_of(entry)
                if isinstance(symbols, FileSymbols) and symbols.holds_records():
                    symbols.release(self.cache, (entry.path, entry.sha256, entry.language))
        self.rows, self.entries = [], []
