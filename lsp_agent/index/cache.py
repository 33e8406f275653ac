"""The on-disk index cache: one SQLite database per workspace root.

Each file is a row keyed by path, holding size, mtime_ns, sha256 and the encoded entry (see
codec.py); binary and oversized files get a row too (sha256 ``SKIP_MARK``, the reason as
blob) so a warm start does not read them again. A row is reused when size and mtime match;
when they do not, the file is re-read and its hash compared before parsing. The meta table
pins the schema version, the grammar/query fingerprint and the root; any mismatch empties the
cache. The cache is an optimisation only: every failure is logged and degrades to a cold
index, never an exception for the caller.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lsp_agent.index import codec, languages

log = logging.getLogger(__name__)

SCHEMA_VERSION = f"2.{codec.FORMAT}"
# A row with this sha256 records a skipped file; its blob is the reason (ASCII).
SKIP_MARK = "-"
CACHED_SKIPS = frozenset({"binary", "too_large"})
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    blob BLOB NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class CachedRow:
    size: int
    mtime_ns: int
    sha256: str
    blob: bytes


Row = tuple[str, int, int, str, bytes]  # path, size, mtime_ns, sha256, blob


class IndexCache:
    def __init__(self, path: Path, root: Path) -> None:
        self.path = path
        self.root = str(root)
        self._meta = {
            "schema": SCHEMA_VERSION,
            "fingerprint": languages.fingerprint(),
            "root": self.root,
        }

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _reset(self, reason: str) -> None:
        log.warning("index cache %s %s; rebuilding it", self.path, reason)
        for suffix in ("", "-journal", "-wal", "-shm"):
            try:
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            except OSError as exc:
                log.debug("cannot remove %s%s: %s", self.path, suffix, exc)

    def _open_checked(self) -> sqlite3.Connection:
        """A connection to a database whose meta matches ours (emptied when it does not)."""
        conn = self._connect()
        try:
            conn.executescript(_SCHEMA)
            stored = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if stored != self._meta:
                if stored:
                    log.info("index cache %s is stale (%s); starting over", self.path, stored)
                with conn:
                    conn.execute("DELETE FROM files")
                    conn.execute("DELETE FROM meta")
                    conn.executemany("INSERT INTO meta VALUES (?, ?)", self._meta.items())
        except BaseException:
            conn.close()
            raise
        return conn

    def load(self) -> dict[str, CachedRow]:
        for attempt in (1, 2):
            try:
                conn = self._open_checked()
                try:
                    rows = conn.execute(
                        "SELECT path, size, mtime_ns, sha256, blob FROM files"
                    ).fetchall()
                finally:
                    conn.close()
                return {row[0]: CachedRow(row[1], row[2], row[3], row[4]) for row in rows}
            except (sqlite3.Error, OSError) as exc:
                if attempt == 2:
                    log.warning("index cache %s unusable (%s); indexing without it", self.path, exc)
                    return {}
                self._reset(f"is unreadable ({exc})")
        return {}

    def write(self, rows: Iterable[Row], deleted: Iterable[str] = ()) -> None:
        """Upsert ``rows`` and delete ``deleted`` in one transaction."""
        rows, deleted = list(rows), list(deleted)
        if not rows and not deleted:
            return
        try:
            conn = self._open_checked()
            try:
                with conn:
                    conn.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)", rows)
                    conn.executemany("DELETE FROM files WHERE path = ?", ((p,) for p in deleted))
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            log.warning("cannot write index cache %s (%s); continuing without it", self.path, exc)
