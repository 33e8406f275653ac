"""One file's symbols kept compact: the names ranking needs in memory, the records on disk.

A large workspace (the Linux kernel: ~3 M definitions, ~8 M references) cannot hold one Python
object per record: that alone was gigabytes. Each entry instead holds a ``FileSymbols``:

- the name summary ranking and lookups need (defined names, referenced names with counts) as
  arrays of ids into the index's ``NameTable`` (one string per name across the workspace;
  4 bytes per name a file uses), in the order of the names' strings, and the record counts;
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
import marshal
import operator
import sys
import threading
from array import array
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import compress
from typing import TYPE_CHECKING, Any, Protocol, overload

if TYPE_CHECKING:
    from lsp_agent.index.model import Definition, FileEntry, Reference

log = logging.getLogger(__name__)

_NAME = operator.itemgetter(0)  # the name of a record, raw tuple or NamedTuple

# (defined names, sorted unique; referenced names, sorted unique; reference count per name)
Summary = tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...]]
EMPTY_SUMMARY: Summary = ((), (), ())


def summarize_records(definitions: Sequence[Any], references: Sequence[Any]) -> Summary:
    """The name summary of raw or record tuples. ``context.ranking`` builds its graph from
    exactly this; its float sums follow the order of these tuples, so the computation is fixed.
    (An entry stores it as ids into its ``NameTable``: one string per name across the
    workspace.)"""
    counts = Counter(map(_NAME, references))
    referenced = tuple(sorted(counts))
    defined = tuple(sorted(set(map(_NAME, definitions))))
    return defined, referenced, tuple(map(counts.__getitem__, referenced))


# Names a changed file may bring that its previous version lacked, looked up by scanning the
# table rather than building its dict: typing adds one or two; a paste of new code more.
SCAN_LIMIT = 4


# The packed table: this tag, the count, each id's position in string order (int32), then the
# names in string order joined by NUL (UTF-8). A table whose names hold a NUL is packed as a
# marshalled list instead (the tag tells them apart).
_SORTED_TAG = b"lsp-agent names by string\0"
NAME_ENCODING = ("utf-8", "surrogatepass")  # any str round-trips, lone surrogates included
# (every name sorted by string, each id's position there). A tuple, not a list: the collector
# untracks a tuple of strings after one pass, and a list of the kernel's 2.3 M names, walked by
# every full collection after the server's freeze, made an edit wait ~0.14 s now and then.
Order = tuple[tuple[str, ...], "array[int]"]
# Names added since the string order was last made are merged into it one by one up to this
# many (a server's edits); more (a cold build) are sorted with the rest.
MERGE_LIMIT = 4096


class NameTable:
    """Every name the index has seen, by id. Ids are only ever added (a name no file uses any
    more keeps its id until the next cold build). A warm start adopts the table the cache
    stored as bytes, unpacked on first use: the ``index`` command never does.

    The bytes hold the names in string order with each id's place in it (``order()``): the
    reference graph wants exactly that (context/idgraph.py), and it unpacks in a fifth of the
    time a marshalled list of the kernel's 2.3 M interned strings took (~1.7 s), with no sort."""

    def __init__(self, packed: bytes | memoryview | None = None) -> None:
        self._names: list[str] | None = None if packed is not None else []
        self._packed = packed
        self._ids: dict[str, int] | None = None if packed is not None else _new_ids(())
        # (the names sorted by string, the position of each id there) for the first
        # len(positions) ids; made on demand, kept while the names are
        self._order: Order | None = None
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self.names)

    @property
    def names(self) -> list[str]:
        names = self._names
        if names is None:
            with self._lock:
                if self._names is None:
                    order = self._order
                    if order is None:
                        assert self._packed is not None
                        unpacked = _unpack(self._packed)
                        if isinstance(unpacked, list):
                            self._names, self._packed = unpacked, None
                            return unpacked
                        order = self._order = unpacked
                    self._names = list(map(order[0].__getitem__, order[1]))
                    self._packed = None
                names = self._names
        return names

    def order(self) -> Order:
        """(every name, sorted by string; the position of each id in that list). From the
        packed bytes without building the list by id; brought up to date when names were
        added since (merged, or sorted again when many were)."""
        with self._lock:
            if self._names is None and self._order is None:
                assert self._packed is not None
                unpacked = _unpack(self._packed)
                if isinstance(unpacked, list):
                    self._names = unpacked
                else:
                    self._order = unpacked
                self._packed = None  # the order holds every name now: no second copy
            order = self._order
            if self._names is None:
                assert order is not None
                return order
            names = self._names
            if order is None or len(names) - len(order[1]) > MERGE_LIMIT:
                order = _sorted_order(names, self._ids)
            elif len(order[1]) < len(names):
                order = _merged_order(order, names)
            self._order = order
            return order

    def places(self) -> tuple[array[int], memoryview | None]:
        """(each id's place in string order, the names in that order joined by NUL as UTF-8
        bytes), from the cache's packed table without making a string (the stable ranking
        needs the places and a few tests on the bytes: context/idgraph.py); once the names
        are strings, (``order()``'s positions, None)."""
        with self._lock:
            if self._names is None and self._order is None:
                assert self._packed is not None
                parts = _sorted_parts(memoryview(self._packed))
                if parts is not None:
                    return parts
        return self.order()[1], None

    def names_of(self, ids: Iterable[int]) -> list[str]:
        """The names of ``ids``: from the list by id when it is there, else from the string
        order, so a process that built the reference graph does not build the list of all
        names (~0.3 s on the kernel) for a file's few (an edit's hint, a changed summary)."""
        with self._lock:
            order = self._order if self._names is None else None
        if order is not None:  # no name was added since: that builds the list
            by_string, positions = order
            return list(map(by_string.__getitem__, map(positions.__getitem__, ids)))
        return list(map(self.names.__getitem__, ids))

    def _index(self) -> dict[str, int]:
        if self._ids is None:
            names = self.names
            self._ids = _new_ids(zip(names, range(len(names)), strict=True))
        return self._ids

    def ids_of(self, names: Iterable[str], hint: Mapping[str, int] | None = None) -> array[int]:
        """Ids of ``names`` in their order, new names added. ``hint`` holds ids already known
        (the names of the file's previous version): with it and the lookup dict not built,
        the few other names are found by a scan of the list instead of building the dict, which
        takes ~0.8 s over the kernel's 2.3 M names and ~100 MB kept (a server's first edit)."""
        with self._lock:
            if self._ids is None and hint is not None:
                found = self._ids_by_scan(names, hint)
                if found is not None:
                    return found
            ids = self._index()
            table = self.names
            known = len(table)
            names = names if isinstance(names, list | tuple) else tuple(names)
            # One pass in C: a missing name gets the next id from the dict itself (_new_ids).
            found = list(map(ids.__getitem__, names))
            if len(ids) > known:
                # The new names in id order, each once: still no Python loop per name (a cold
                # build of the kernel adds 2.3 M).
                table.extend(dict.fromkeys(compress(names, map(known.__le__, found))))
        return array("i", found)  # from a list: array() consumes an iterator item by item

    def _ids_by_scan(self, names: Iterable[str], hint: Mapping[str, int]) -> array[int] | None:
        names = tuple(names)
        unknown = [name for name in names if name not in hint]
        if len(unknown) > SCAN_LIMIT:
            return None
        if not unknown:  # an edit that names nothing new needs no list of all names
            return array("i", map(hint.__getitem__, names))
        table = self.names
        resolved = dict(hint)
        for name in unknown:
            if name not in resolved:
                try:
                    resolved[name] = table.index(name)  # ~15 ms over 2.3 M names
                except ValueError:
                    resolved[name] = len(table)
                    table.append(sys.intern(name))
        return array("i", map(resolved.__getitem__, names))

    def id_of(self, name: str) -> int | None:
        """The id of ``name``, or None; no name is added. Without the dict built (a warm start
        that only looked names up) a C-level scan of the list: ~10 ms over 1.5 M names."""
        ids = self._ids
        if ids is not None:
            return ids.get(name)
        try:
            return self.names.index(name)
        except ValueError:
            return None

    def packed(self) -> bytes | memoryview:
        with self._lock:
            if self._packed is not None:
                return self._packed
            return b"".join(self._encode())

    def packed_pieces(self) -> list[bytes | memoryview]:
        """``packed()`` as pieces that join to it, each made by a short call: a server
        rewriting the cache's snapshot on a thread then never holds the interpreter for long
        (one join and encode of the kernel's 2.3 M names held it ~0.3 s, under the edits)."""
        with self._lock:
            if self._packed is not None:
                return [self._packed]
            return self._encode()

    def pack(self) -> bytes | memoryview:
        """``packed()``, and the table held as those bytes from now on, as a warm start holds
        it: the names' strings and the lookup dict are freed until a use unpacks them. After a
        cold build of the kernel (2.3 M names) that is ~200 MB the server would otherwise keep."""
        with self._lock:
            if self._packed is None:
                self._packed = b"".join(self._encode())
                self._names = None
                if self._ids is not None:
                    # Its factory is its own __len__: without this the cycle would keep the
                    # dict (~100 MB on the kernel) until the next full collection.
                    self._ids.default_factory = None  # type: ignore[attr-defined]
                self._ids = None
                self._order = None
            return self._packed

    def _encode(self) -> list[bytes | memoryview]:
        by_string, positions = self.order()  # every id's place, brought up to date
        n = len(positions)
        pieces: list[bytes | memoryview] = [
            _SORTED_TAG, n.to_bytes(8, "little"), positions.tobytes()
        ]  # fmt: skip
        for start in range(0, n, ENCODE_PIECE):
            part = by_string[start : start + ENCODE_PIECE]
            joined = "\0".join(part)
            if joined.count("\0") != len(part) - 1:
                return [marshal.dumps(self.names)]  # a name holds a NUL: no joined form
            if start:
                pieces.append(b"\0")
            pieces.append(joined.encode(*NAME_ENCODING))
        return pieces


ENCODE_PIECE = 65_536  # names joined and encoded per call when the table is packed


def _new_ids(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    """name -> id; looking up a missing name adds it with the next id (the dict's size)."""
    ids: defaultdict[str, int] = defaultdict(None, pairs)
    ids.default_factory = ids.__len__
    return ids


def _unpack(packed: bytes | memoryview) -> Order | list[str]:
    """The order packed by ``NameTable._encode``, or the list a marshalled table holds
    (``packed``: bytes, or a view of the cache's mapped heads file)."""
    view = memoryview(packed)
    parts = _sorted_parts(view)
    if parts is None:
        loaded = marshal.loads(view)
        if not isinstance(loaded, list):
            raise ValueError("not a name table")
        return loaded
    positions, joined = parts
    n = len(positions)
    by_string = tuple(str(joined, *NAME_ENCODING).split("\0")) if n else ()
    if len(by_string) != n:
        raise ValueError("not a name table")
    return by_string, positions


def _sorted_parts(view: memoryview) -> tuple[array[int], memoryview] | None:
    """(each id's place in string order, the names joined by NUL) of a table packed in string
    order, or None for a marshalled one; ValueError when the places are cut short."""
    start = len(_SORTED_TAG)
    if view[:start] != _SORTED_TAG:
        return None
    n = int.from_bytes(view[start : start + 8], "little")
    positions = array("i")
    positions.frombytes(view[start + 8 : start + 8 + 4 * n])
    if len(positions) != n:
        raise ValueError("not a name table")
    return positions, view[start + 8 + 4 * n :]


NUMPY_ORDER_MIN = 200_000


def _sorted_order(names: list[str], ids: Mapping[str, int] | None = None) -> Order:
    """``order()`` made from scratch. With the name -> id dict (a cold build has it) the strings
    are sorted themselves and their ids looked up after: on 2.4 M names half the time and a
    third of the memory of sorting 2.4 M int ids by string (an int object each)."""
    n = len(names)
    positions = array("i", bytes(4 * n))
    # Importing numpy costs ~0.1 s, what the loops below cost for ~300k names: a cold
    # `lsp-agent index` of a small tree would spend more on the import than on the order.
    np = _numpy() if n > NUMPY_ORDER_MIN or "numpy" in sys.modules else None
    if ids is not None and len(ids) == n:
        by_string = sorted(names)
        if np is not None and n:
            order = np.fromiter(map(ids.__getitem__, by_string), dtype=np.int32, count=n)
            np.frombuffer(positions, dtype=np.int32)[order] = np.arange(n, dtype=np.int32)
        else:
            for position, name in enumerate(by_string):
                positions[ids[name]] = position
        return tuple(by_string), positions
    by_id = sorted(range(n), key=names.__getitem__)
    if np is not None and n:
        np.frombuffer(positions, dtype=np.int32)[by_id] = np.arange(n, dtype=np.int32)
    else:
        for position, i in enumerate(by_id):
            positions[i] = position
    return tuple(map(names.__getitem__, by_id)), positions


def _merged_order(order: Order, names: list[str]) -> Order:
    """``order`` for the first ids, with the names added after them merged in."""
    by_string, positions = order
    np = _numpy()
    if np is None:
        return _sorted_order(names)
    added = sorted(range(len(positions), len(names)), key=names.__getitem__)
    # Each added name goes before the name now at ``at`` (names are unique: never equal).
    at = [bisect_left(by_string, names[i]) for i in added]
    merged: list[str] = []
    previous = 0
    for place, i in zip(at, added, strict=True):
        merged += by_string[previous:place]
        merged.append(names[i])
        previous = place
    merged += by_string[previous:]
    old = np.frombuffer(positions, dtype=np.int32)
    moved = array("i", bytes(4 * len(names)))
    out = np.frombuffer(moved, dtype=np.int32)
    out[: len(old)] = old + np.searchsorted(np.array(at, dtype=np.int64), old, side="right")
    out[np.array(added, dtype=np.intp)] = np.array(at, dtype=np.int32) + np.arange(
        len(added), dtype=np.int32
    )
    return tuple(merged), moved


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:  # a dependency; without it the order is made in plain Python
        return None
    return numpy


class RecordSource(Protocol):
    """Where records live once they are not held in memory (cache.CacheReader)."""

    def records_blob(self, path: str, sha256: str) -> bytes | None: ...

    def reextract(self, path: str, sha256: str, language: str | None) -> bytes | None: ...


class FileSymbols:
    """Name ids in memory, records in a blob or behind a ``RecordSource``. Thread-safe for
    readers: ``release`` only swaps attributes, and a reader holding the old blob is fine."""

    __slots__ = (
        "_held",
        "_key",
        "_source",
        "counts",
        "defined",
        "n_definitions",
        "n_references",
        "referenced",
        "table",
    )

    def __init__(
        self,
        table: NameTable,
        ids: tuple[array[int], array[int], array[int]],  # defined, referenced, counts
        n_definitions: int,
        n_references: int,
        blob: bytes | None = None,
        source: RecordSource | None = None,
        key: tuple[str, str, str | None] | None = None,  # path, sha256, language
    ) -> None:
        self.table = table
        self.defined, self.referenced, self.counts = ids
        self.n_definitions = n_definitions
        self.n_references = n_references
        self._held = blob
        self._source = source
        self._key = key

    @property
    def summary(self) -> Summary:
        """The names as strings, each tuple in the order of the strings (how it was stored)."""
        names_of = self.table.names_of
        return tuple(names_of(self.defined)), tuple(names_of(self.referenced)), tuple(self.counts)

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
    if (a.n_definitions, a.n_references) != (b.n_definitions, b.n_references):
        return False
    if a.table is b.table:
        if (a.defined, a.referenced, a.counts) != (b.defined, b.referenced, b.counts):
            return False
    elif a.summary != b.summary:
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


def known_ids(entry: FileEntry | None, table: NameTable) -> dict[str, int] | None:
    """name -> id of the names ``entry`` uses, when its ids are ``table``'s (the hint for
    ``NameTable.ids_of`` when the file changes)."""
    symbols = symbols_of(entry) if entry is not None else None
    if symbols is None or symbols.table is not table:
        return None
    known = dict(zip(table.names_of(symbols.defined), symbols.defined, strict=True))
    known.update(zip(table.names_of(symbols.referenced), symbols.referenced, strict=True))
    return known


def summary_of(entry: FileEntry) -> Summary:
    """The entry's name summary: stored for index-built entries, computed for hand-made ones."""
    symbols = symbols_of(entry)
    if symbols is not None:
        return symbols.summary
    return summarize_records(entry.definitions, entry.references)


def _mentions(entry: FileEntry, name: str, ids: dict[int, int | None], part: int) -> bool:
    symbols = symbols_of(entry)
    if symbols is None:
        records = entry.references if part else entry.definitions
        return any(record.name == name for record in records)
    key = id(symbols.table)
    if key not in ids:
        ids[key] = symbols.table.id_of(name)
    found = ids[key]
    return found is not None and found in (symbols.referenced if part else symbols.defined)


def lookup(entries: dict[str, FileEntry], name: str, *, references: bool) -> list[tuple[str, Any]]:
    """(path, record) of every definition (or reference) named ``name``, by path then position.
    Only files whose name ids include the name's are decoded (``in`` on an array: a C loop)."""
    part = 1 if references else 0
    ids: dict[int, int | None] = {}  # table -> the name's id there
    hits: list[tuple[str, Any]] = []
    for path in sorted(p for p, e in entries.items() if _mentions(e, name, ids, part)):
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
