"""One file's symbols kept compact: the names ranking needs in memory, the records on disk.

A large workspace (the Linux kernel: ~3 M definitions, ~8 M references) cannot hold one Python
object per record: that alone was gigabytes. Each entry instead holds a ``FileSymbols``:

- the name summary ranking and lookups need (defined names, referenced names with counts:
  sorted tuples of interned strings, shared by every file that uses the name), and the record
  counts;
- the records themselves as one encoded blob (codec.py) while nothing else has them, or only a
  handle to the index cache row that has them once it is written. ``entry.definitions`` and
  ``entry.references`` are sequences that decode on each access (a tool lookup, a signatures
  render): positions are read from the cache when someone asks, not kept.

When the cache row is gone or holds other content (another process rewrote the cache), the
records are extracted again from the file on disk if it still has the entry's content.
"""

from __future__ import annotations

import hashlib
import logging
import operator
import sys
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, overload

if TYPE_CHECKING:
    from lsp_agent.index.model import Definition, FileEntry, Reference

log = logging.getLogger(__name__)

_NAME = operator.itemgetter(0)  # the name of a record, raw tuple or NamedTuple

# (defined names, sorted unique; referenced names, sorted unique; reference count per name)
Summary = tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...]]
EMPTY_SUMMARY: Summary = ((), (), ())


def summarize_records(definitions: Sequence[Any], references: Sequence[Any]) -> Summary:
    """The name summary of raw or record tuples (names interned: one string per name across
    the workspace). ``context.ranking`` builds its graph from exactly this; its float sums
    follow the order of these tuples, so the computation is fixed."""
    counts = Counter(map(sys.intern, map(_NAME, references)))
    referenced = tuple(sorted(counts))
    defined = tuple(sorted(set(map(sys.intern, map(_NAME, definitions)))))
    return defined, referenced, tuple(map(counts.__getitem__, referenced))


class RecordSource(Protocol):
    """Where records live once they are not held in memory (cache.CacheReader)."""

    def records_blob(self, path: str, sha256: str) -> bytes | None: ...

    def reextract(self, path: str, sha256: str, language: str | None) -> bytes | None: ...


class FileSymbols:
    """Names in memory, records in a blob or behind a ``RecordSource``. Thread-safe for
    readers: ``release`` only swaps one attribute, and a reader holding the old blob is fine."""

    __slots__ = ("_held", "_key", "_source", "n_definitions", "n_references", "summary")

    def __init__(
        self,
        summary: Summary,
        n_definitions: int,
        n_references: int,
        blob: bytes | None = None,
        source: RecordSource | None = None,
        key: tuple[str, str, str | None] | None = None,  # path, sha256, language
    ) -> None:
        self.summary = summary
        self.n_definitions = n_definitions
        self.n_references = n_references
        self._held = blob
        self._source = source
        self._key = key

    def holds_records(self) -> bool:
        return self._held is not None

    def records_blob(self) -> bytes | None:
        """The encoded records, from memory or the source (None when nothing has them)."""
        blob = self._held
        if blob is not None or self._source is None or self._key is None:
            return blob
        path, sha, language = self._key
        blob = self._source.records_blob(path, sha)
        if blob is None:
            log.info("index cache has no records for %s; extracting them again", path)
            blob = self._source.reextract(path, sha, language)
        return blob

    def release(self, source: RecordSource, key: tuple[str, str, str | None]) -> None:
        """The cache now holds the records: keep only the handle."""
        self._source, self._key = source, key
        self._held = None

    def raw(self) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        if not (self.n_definitions or self.n_references):
            return (), ()
        blob = self.records_blob()
        decoded = _checked(blob, self.n_definitions, self.n_references)
        if decoded is None and blob is not None and self._held is None and self._source:
            assert self._key is not None
            log.warning("damaged cache records for %s; extracting them again", self._key[0])
            decoded = _checked(
                self._source.reextract(*self._key), self.n_definitions, self.n_references
            )
        if decoded is None:
            log.warning("records of %s are unavailable (cache and file changed)", self._key)
            return (), ()
        return decoded


def _checked(
    blob: bytes | None, n_definitions: int, n_references: int
) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
    """Decoded records when the blob holds as many as the head says, else None."""
    from lsp_agent.index.codec import decode_records

    if blob is None:
        return None
    try:
        definitions, references = decode_records(blob)
    except (ValueError, EOFError, TypeError):
        return None
    if (len(definitions), len(references)) != (n_definitions, n_references):
        return None
    return definitions, references


def _same_records(a: FileSymbols, b: FileSymbols) -> bool | None:
    """True/False when cheap to tell, None when the records must be compared."""
    if a is b:
        return True
    if (a.n_definitions, a.n_references, a.summary) != (b.n_definitions, b.n_references, b.summary):
        return False
    if a._held is not None and a._held == b._held:
        return True
    if a._key is not None and a._key == b._key and a._source is b._source:
        return True  # same path and content hash in the same cache
    return None


class _Records(Sequence[Any]):
    """A read-only sequence over one kind of a file's records, decoded on access."""

    __slots__ = ("symbols",)
    _part = 0

    def __init__(self, symbols: FileSymbols) -> None:
        self.symbols = symbols

    def _decode(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.symbols.n_definitions if self._part == 0 else self.symbols.n_references

    def __iter__(self) -> Iterator[Any]:
        return iter(self._decode())

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Any, ...]: ...
    def __getitem__(self, index: int | slice) -> Any:
        return self._decode()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Records) and other._part == self._part:
            same = _same_records(self.symbols, other.symbols)
            if same is not None:
                return same
        if isinstance(other, _Records | tuple | list):
            return len(self) == len(other) and self._decode() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._decode())

    def __repr__(self) -> str:
        return repr(self._decode())

    def __reduce__(self) -> tuple[Any, ...]:
        return tuple, (self._decode(),)  # a process boundary gets the records themselves


class DefinitionRecords(_Records):
    __slots__ = ()
    _part = 0

    def _decode(self) -> tuple[Definition, ...]:
        from lsp_agent.index.codec import new_definition

        return tuple(map(new_definition, self.symbols.raw()[0]))


class ReferenceRecords(_Records):
    __slots__ = ()
    _part = 1

    def _decode(self) -> tuple[Reference, ...]:
        from lsp_agent.index.codec import new_reference

        return tuple(map(new_reference, self.symbols.raw()[1]))


def symbols_of(entry: FileEntry) -> FileSymbols | None:
    records = entry.definitions
    return records.symbols if isinstance(records, _Records) else None


def summary_of(entry: FileEntry) -> Summary:
    """The entry's name summary: stored for index-built entries, computed for hand-made ones."""
    symbols = symbols_of(entry)
    if symbols is not None:
        return symbols.summary
    return summarize_records(entry.definitions, entry.references)


def _has(names: tuple[str, ...], name: str) -> bool:
    i = bisect_left(names, name)
    return i < len(names) and names[i] == name


def lookup(entries: dict[str, FileEntry], name: str, *, references: bool) -> list[tuple[str, Any]]:
    """(path, record) of every definition (or reference) named ``name``, by path then position.
    Only files whose summary has the name are decoded."""
    part = 1 if references else 0
    hits: list[tuple[str, Any]] = []
    for path in sorted(p for p, e in entries.items() if _has(summary_of(e)[part], name)):
        entry = entries[path]
        records = entry.references if references else entry.definitions
        hits.extend((path, record) for record in records if record.name == name)
    return hits


def reextract_blob(
    full_path: str, sha256: str, language: str | None, max_bytes: int
) -> bytes | None:
    """The records of the file at ``full_path`` if it still has content ``sha256``."""
    from lsp_agent.index.codec import encode_records
    from lsp_agent.index.discovery import read_source
    from lsp_agent.index.symbols import extract_raw

    data = read_source(full_path, max_bytes)
    if isinstance(data, str) or hashlib.sha256(data).hexdigest() != sha256 or language is None:
        return None
    definitions, references, _errors = extract_raw(language, data)
    return encode_records(definitions, references)
