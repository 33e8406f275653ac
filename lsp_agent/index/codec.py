"""A compact, fast serialization of FileEntry: marshal of plain tuples, in two parts.

- the head: everything an entry holds in memory (language, lines, flags, record counts and the
  name summary, see symtab.py), with the names as strings (self-contained: a pool result, a
  cache row); the compact head of the cache's heads snapshot has them as id arrays into the
  name table stored beside it. A warm start decodes only heads.
- the records: definitions and references as tuples, decoded when someone asks for them.

Pool workers send both as bytes (pickling stays small and cheap) and the cache stores them in
separate tables. Not pickle: loading a cache file must never execute code.
"""

from __future__ import annotations

import functools
import marshal
from array import array
from collections.abc import Mapping
from typing import Any

from lsp_agent.index.model import Definition, FileEntry, Reference, new_entry
from lsp_agent.index.symtab import (
    DefinitionRecords,
    FileSymbols,
    NameTable,
    RecordSource,
    ReferenceRecords,
    Summary,
    summarize_records,
    symbols_of,
)

FORMAT = 5  # bump when a tuple layout or the packed name table changes (the cache schema)

# tuple.__new__ bound to the record class: NamedTuple._make without its Python frame.
new_definition = functools.partial(tuple.__new__, Definition)
new_reference = functools.partial(tuple.__new__, Reference)

# FileEntry's fields in order (without from_buffer), records as tuples
RawEntry = tuple
# language, lines, decode_errors, generated, syntax_errors, n_definitions, n_references, summary
Head = tuple[str | None, int, bool, bool, int, int, int, Summary]
# the same with the summary as three int32 arrays: defined ids, referenced ids, counts (ids
# into the name table stored with it); bytes as read back, the arrays themselves when written
Ids = bytes | array  # array[int]: a runtime alias cannot subscript array
CompactHead = tuple[str | None, int, bool, bool, int, int, int, Ids, Ids, Ids]


def encode_records(definitions: Any, references: Any) -> bytes:
    return marshal.dumps((tuple(map(tuple, definitions)), tuple(map(tuple, references))))


def decode_records(blob: bytes) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    definitions, references = marshal.loads(blob)
    return definitions, references


def split_raw(raw: RawEntry) -> tuple[Head, bytes]:
    """(head, encoded records) of a raw entry (symbols.raw_entry)."""
    (
        _path,
        language,
        _size,
        _mtime_ns,
        _sha,
        lines,
        defs,
        refs,
        decode_errors,
        generated,
        errors,
    ) = raw
    summary = summarize_records(defs, refs)
    head = (language, lines, decode_errors, generated, errors, len(defs), len(refs), summary)
    return head, encode_records(defs, refs)


def encode_head(head: Head) -> bytes:
    return marshal.dumps(head)


def decode_head(blob: bytes) -> Head:
    """Raises ValueError (or EOFError/TypeError) on a damaged blob; callers treat that as a miss."""
    head = marshal.loads(blob)
    if not isinstance(head, tuple) or len(head) != 8:
        raise ValueError("not an entry head")
    return head  # type: ignore[no-any-return]


def _ints(data: bytes) -> array[int]:
    ints = array("i")
    ints.frombytes(data)
    return ints


def entry_from_head(
    path: str,
    size: int,
    mtime_ns: int,
    sha256: str,
    head: Head | CompactHead,
    *,
    table: NameTable,
    blob: bytes | None = None,
    source: RecordSource | None = None,
    from_buffer: bool = False,
    hint: Mapping[str, int] | None = None,
) -> FileEntry:
    """An entry whose records are ``blob`` (held) or behind ``source`` (the cache). A compact
    head's ids must be ``table``'s; a head's names are added to it (``hint``: see
    ``NameTable.ids_of``)."""
    language, lines, decode_errors, generated, errors, n_defs, n_refs, *rest = head
    if len(rest) == 3:
        ids = (_ints(rest[0]), _ints(rest[1]), _ints(rest[2]))
    else:
        (defined, referenced, counts) = rest[0]
        ids = (table.ids_of(defined, hint), table.ids_of(referenced, hint), array("i", counts))
    key = (path, sha256, language) if source is not None else None
    symbols = FileSymbols(table, ids, n_defs, n_refs, blob, source, key)
    return new_entry(
        path,
        language,
        size,
        mtime_ns,
        sha256,
        lines,
        DefinitionRecords(symbols),
        ReferenceRecords(symbols),
        decode_errors,
        generated,
        errors,
        from_buffer,
    )


def entry_from_raw(
    raw: RawEntry,
    *,
    table: NameTable,
    from_buffer: bool = False,
    hint: Mapping[str, int] | None = None,
) -> FileEntry:
    head, records = split_raw(raw)
    path, _language, size, mtime_ns, sha = raw[:5]
    return entry_from_head(
        path,
        size,
        mtime_ns,
        sha,
        head,
        table=table,
        blob=records,
        from_buffer=from_buffer,
        hint=hint,
    )


def compact_head_of(entry: FileEntry, table: NameTable) -> CompactHead | None:
    """The entry's compact head for ``table``; None when its names are in another table."""
    symbols = symbols_of(entry)
    if symbols is None or symbols.table is not table:
        return None
    return (
        entry.language,
        entry.lines,
        entry.decode_errors,
        entry.generated,
        entry.syntax_errors,
        symbols.n_definitions,
        symbols.n_references,
        # The arrays themselves: marshal writes any buffer as bytes, which is what a load
        # reads back, and a kernel build's heads snapshot does not copy ~50 MB of ids first.
        symbols.defined,
        symbols.referenced,
        symbols.counts,
    )


def head_of(entry: FileEntry) -> Head:
    symbols = symbols_of(entry)
    if symbols is None:
        summary = summarize_records(entry.definitions, entry.references)
    else:
        summary = symbols.summary
    return (
        entry.language,
        entry.lines,
        entry.decode_errors,
        entry.generated,
        entry.syntax_errors,
        len(entry.definitions),
        len(entry.references),
        summary,
    )


def records_of(entry: FileEntry) -> bytes:
    symbols = symbols_of(entry)
    blob = symbols.records_blob() if symbols is not None else None
    return blob if blob is not None else encode_records(entry.definitions, entry.references)
