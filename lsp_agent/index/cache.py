"""The on-disk index cache: one SQLite database per workspace root.

``files`` has a row per file keyed by path: size, mtime_ns, sha256 and the entry's head
(codec.py: what an entry keeps in memory); ``records`` holds each file's encoded definitions
and references with the sha256 they belong to, read one file at a time when a tool or a render
asks (symtab.py), never at a warm start. Binary and oversized files get a ``files`` row too
(sha256 ``SKIP_MARK``, the reason as head) so a warm start does not read them again. A row is
reused when size and mtime match; when they do not, the file is re-read and its hash compared
before parsing.

A warm start reads one file instead of the ``files`` rows: ``index.heads`` beside the
database holds every row of ``files`` — the name table once (symtab.NameTable, packed, mapped
and not copied: a warm start never reads its pages), then each file's names as id arrays
(codec.CompactHead) in marshalled pieces of HEADS_PIECE rows: no string is built per file —
stamped with the ``state.generation`` it reflects. A file, not a row: SQLite read the kernel's
109 MB blob through its overflow-page chain in ~0.27 s, the whole load now takes ~0.2 s.
Every write bumps the generation; a snapshot whose generation is not the current one is
ignored (the rows are read instead) and rewritten by the next full build of a process that saw
every write since it loaded (``generation`` stays known). The meta table pins the schema
version, the grammar/query fingerprint and the root; any mismatch empties the cache. The
cache is an optimisation only: every failure is logged and degrades to a cold index (or
records extracted again), never an exception for the caller.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import mmap
import os
import sqlite3
import struct
import threading
from array import array
from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from lsp_agent.index import codec, languages
from lsp_agent.index.symtab import reextract_blob

log = logging.getLogger(__name__)

SCHEMA_VERSION = f"4.{codec.FORMAT}"
HEADS_MAGIC = b"LSPAHDS2"
# magic, the generation it reflects, the packed name table's length; then the table; then the
# rows: how many pieces, each piece's length, and the pieces, each a marshalled dict of up to
# HEADS_PIECE rows (marshalled in one call, the kernel's 78k rows held the interpreter ~0.5 s
# while a server's thread rewrote the snapshot: edits waited)
_HEADS_HEADER = struct.Struct("<8sqq")
HEADS_PIECE = 4096
# A row with this sha256 records a skipped file; its head is the reason (ASCII).
SKIP_MARK = "-"
CACHED_SKIPS = frozenset({"binary", "too_large"})
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    head BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    blob BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
# Rows per transaction while a cold build streams its results in (memory stays flat).
WRITE_BATCH = 2048
_MMAP_BYTES = 1 << 30  # records are read through SQLite's memory map, not copied by read()


# size, mtime_ns, sha256, head: encoded (bytes, from a row) or a codec.CompactHead (from the
# heads snapshot); for a skipped file (sha256 SKIP_MARK) the reason, as ASCII bytes or a str
CachedRow = tuple[int, int, str, Any]


# path, size, mtime_ns, sha256, head, records (None: the records row is already right)
Row = tuple[str, int, int, str, bytes, bytes | None]


class IndexCache:
    def __init__(self, path: Path, root: Path, max_file_bytes: int = 1 << 30) -> None:
        self.path = path
        self.heads_path = path.with_name(path.name.removesuffix(".sqlite") + ".heads")
        self.root = str(root)
        self.max_file_bytes = max_file_bytes
        self._meta = {
            "schema": SCHEMA_VERSION,
            "fingerprint": languages.fingerprint(),
            "root": self.root,
        }
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        # The database's generation after this process's last load or write, while no other
        # process wrote in between (None: unknown, so no heads snapshot is written).
        self.generation: int | None = None
        self.heads_current = False  # the heads snapshot matches the rows

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _reset(self, reason: str) -> None:
        log.warning("index cache %s %s; rebuilding it", self.path, reason)
        self.close()
        for gone in (*(Path(f"{self.path}{s}") for s in ("", "-journal", "-wal", "-shm")),
                     self.heads_path):  # fmt: skip
            try:
                gone.unlink(missing_ok=True)
            except OSError as exc:
                log.debug("cannot remove %s: %s", gone, exc)

    def _open_checked(self) -> sqlite3.Connection:
        """A connection to a database whose meta matches ours (emptied when it does not)."""
        conn = self._connect()
        try:
            has_meta = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone()
            stored = (
                dict(conn.execute("SELECT key, value FROM meta").fetchall()) if has_meta else {}
            )
            if stored != self._meta:
                if stored:
                    self._log_stale(stored)
                # Tables of another schema may differ in shape (an older ``files`` without
                # ``head``): dropped, not emptied. ``state`` keeps its generation counter, so
                # another process's snapshot of an older generation is never taken as current.
                with conn:
                    for table in ("files", "records", "heads", "meta"):  # heads: schema 3
                        conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.executescript(_SCHEMA)
            if stored != self._meta:
                with conn:
                    conn.execute("UPDATE state SET value = value + 1 WHERE key = 'generation'")
                    conn.executemany("INSERT INTO meta VALUES (?, ?)", self._meta.items())
        except BaseException:
            conn.close()
            raise
        return conn

    def _log_stale(self, stored: dict[str, str]) -> None:
        if stored.get("schema") != self._meta["schema"]:
            log.warning(
                "index cache %s was written by another version of lsp-agent (cache schema %s, "
                "this version's is %s); rebuilding it",
                self.path,
                stored.get("schema", "unknown"),
                self._meta["schema"],
            )
        elif stored.get("fingerprint") != self._meta["fingerprint"]:
            log.info("index cache %s was built with other grammars; rebuilding it", self.path)
        else:
            log.info("index cache %s belongs to %s; starting over", self.path, stored.get("root"))

    def load(self, *, heads: bool = True) -> tuple[dict[str, CachedRow], bytes | memoryview | None]:
        """Every file's row without its records (those stay on disk until asked for), and the
        packed name table their compact heads use when they come from the heads snapshot
        (``heads``: the caller can adopt that table; else the rows, with names as strings)."""
        self.generation, self.heads_current = None, False
        for attempt in (1, 2):
            try:
                conn = self._open_checked()
                try:
                    with conn:  # one read transaction: generation, snapshot and rows agree
                        conn.execute("BEGIN")
                        generation = _generation(conn)
                        snapshot = self._heads(generation) if heads else None
                        if snapshot is None:
                            rows = conn.execute(
                                "SELECT path, size, mtime_ns, sha256, head FROM files"
                            ).fetchall()
                finally:
                    conn.close()
                self.generation = generation
                if snapshot is not None:
                    self.heads_current = True
                    return snapshot[1], snapshot[0]
                return {row[0]: row[1:] for row in rows}, None
            except (sqlite3.Error, OSError) as exc:
                if attempt == 2:
                    log.warning("index cache %s unusable (%s); indexing without it", self.path, exc)
                    return {}, None
                self._reset(f"is unreadable ({exc})")
        return {}, None

    def _heads(self, generation: int) -> tuple[memoryview, dict[str, CachedRow]] | None:
        """The heads file's (packed name table, rows) when it reflects ``generation``. The
        table is a view of the mapped file: its pages are read only when it is unpacked."""
        try:
            with open(self.heads_path, "rb") as handle:
                header = handle.read(_HEADS_HEADER.size)
                if len(header) < _HEADS_HEADER.size:
                    raise ValueError("truncated")
                magic, stamp, names_length = _HEADS_HEADER.unpack(header)
                if magic != HEADS_MAGIC:
                    raise ValueError("not a heads file")
                if stamp != generation:
                    return None
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("index cache %s: damaged heads snapshot (%s); reading rows", self.path, exc)
            return None
        start = _HEADS_HEADER.size + names_length
        view = memoryview(mapped)  # the mapping is unmapped once no view of it is left
        try:
            if names_length < 0 or start + 8 > len(view):
                raise ValueError("truncated")
            count = int.from_bytes(view[start : start + 8], "little")
            at = start + 8 + 8 * count
            if count < 0 or at > len(view):
                raise ValueError("truncated")
            heads: dict[str, CachedRow] = {}
            for length in view[start + 8 : at].cast("q"):
                if length < 0 or at + length > len(view):
                    raise ValueError("truncated")
                piece = marshal.loads(view[at : at + length])
                if not isinstance(piece, dict):
                    raise ValueError("not a heads snapshot")
                heads.update(piece)
                at += length
        except (ValueError, EOFError, TypeError) as exc:
            log.warning("index cache %s: damaged heads snapshot (%s); reading rows", self.path, exc)
            return None
        return view[_HEADS_HEADER.size : start], heads

    def write_heads(
        self,
        names: Sequence[bytes | memoryview],
        heads: dict[str, CachedRow],
        generation: int | None = None,
    ) -> None:
        """Store every row as one snapshot, if nobody wrote since ``heads`` was taken at
        ``generation`` (default: this process's last write; then ``heads`` is exactly what
        ``files`` holds). Written to a temporary file and renamed over the old one under the
        database's write lock, so a reader sees a whole snapshot, old or new, and a mapping of
        the old one stays valid."""
        stamp = self.generation if generation is None else generation
        if stamp is None:
            return
        # Before the write lock, piece by piece: ~0.5 s on the kernel in all.
        rows = iter(heads.items())
        pieces = [marshal.dumps(dict(islice(rows, HEADS_PIECE)))]
        while len(pieces) * HEADS_PIECE < len(heads):
            pieces.append(marshal.dumps(dict(islice(rows, HEADS_PIECE))))
        lengths = array("q", map(len, pieces))
        temporary = self.heads_path.with_name(f"{self.heads_path.name}.{os.getpid()}.tmp")
        try:
            conn = self._open_checked()
            try:
                with conn:
                    conn.execute("BEGIN IMMEDIATE")
                    current = _generation(conn)
                    if current != stamp:
                        if current != self.generation:  # another process wrote
                            self.generation = None
                        return
                    with open(temporary, "wb") as out:
                        names_length = sum(map(len, names))
                        out.write(_HEADS_HEADER.pack(HEADS_MAGIC, stamp, names_length))
                        out.writelines(names)
                        out.write(len(pieces).to_bytes(8, "little"))
                        out.write(lengths.tobytes())
                        out.writelines(pieces)
                    os.replace(temporary, self.heads_path)
            finally:
                conn.close()
                with contextlib.suppress(OSError):
                    temporary.unlink(missing_ok=True)
        except (sqlite3.Error, OSError) as exc:
            log.warning("cannot write index cache %s (%s); continuing without it", self.path, exc)
            return
        self.heads_current = stamp == self.generation

    def write(self, rows: Iterable[Row], deleted: Iterable[str] = ()) -> bool:
        """Upsert ``rows`` and delete ``deleted`` in one transaction; False when it failed."""
        rows, deleted = list(rows), list(deleted)
        if not rows and not deleted:
            return True
        try:
            conn = self._open_checked()
            try:
                with conn:
                    conn.execute("BEGIN IMMEDIATE")
                    generation = _generation(conn)
                    conn.execute(
                        "INSERT OR REPLACE INTO state VALUES ('generation', ?)", (generation + 1,)
                    )
                    known = self.generation == generation
                    self.generation = generation + 1 if known else None
                    self.heads_current = False
                    conn.executemany(
                        "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                        (row[:5] for row in rows),
                    )
                    conn.executemany(
                        "INSERT OR REPLACE INTO records VALUES (?, ?, ?)",
                        ((row[0], row[3], row[5]) for row in rows if row[5] is not None),
                    )
                    gone = [(p,) for p in deleted]
                    conn.executemany("DELETE FROM files WHERE path = ?", gone)
                    conn.executemany("DELETE FROM records WHERE path = ?", gone)
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            log.warning("cannot write index cache %s (%s); continuing without it", self.path, exc)
            self.generation = None
            return False
        return True

    # ------------------------------------------------------------ records on demand
    def records_blob(self, path: str, sha256: str) -> bytes | None:
        """The encoded records of ``path`` if the cache holds them for content ``sha256``."""
        with self._reader_lock:
            try:
                if self._reader is None:
                    if not self.path.exists():
                        return None
                    self._reader = self._connect()
                    self._reader.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
                row = self._reader.execute(
                    "SELECT sha256, blob FROM records WHERE path = ?", (path,)
                ).fetchone()
            except (sqlite3.Error, OSError) as exc:
                log.warning("cannot read index cache %s (%s)", self.path, exc)
                self._close_reader()
                return None
        if row is None or row[0] != sha256:
            return None
        return bytes(row[1])

    def reextract(self, path: str, sha256: str, language: str | None) -> bytes | None:
        return reextract_blob(f"{self.root}/{path}", sha256, language, self.max_file_bytes)

    def _close_reader(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(sqlite3.Error):
                self._reader.close()
            self._reader = None

    def close(self) -> None:
        with self._reader_lock:
            self._close_reader()


def _generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM state WHERE key = 'generation'").fetchone()
    return int(row[0]) if row is not None else 0
