"""A compact, fast serialization of FileEntry: marshal of plain tuples.

Used for the pool's results (workers send bytes, so pickling stays small and cheap) and for the
cache's per-file blobs. Not pickle: loading a cache file must never execute code.
"""

from __future__ import annotations

import functools
import marshal

from lsp_agent.index.model import Definition, FileEntry, Reference

FORMAT = 1  # bump when the tuple layout changes (part of the cache's schema version)


def encode_entry(entry: FileEntry) -> bytes:
    return marshal.dumps(
        (
            entry.path,
            entry.language,
            entry.size,
            entry.mtime_ns,
            entry.sha256,
            entry.lines,
            tuple(
                (
                    d.name,
                    d.kind,
                    d.start_line,
                    d.start_col,
                    d.end_line,
                    d.end_col,
                    d.signature,
                    d.scope,
                )
                for d in entry.definitions
            ),
            tuple((r.name, r.kind, r.line, r.col) for r in entry.references),
            entry.decode_errors,
            entry.syntax_errors,
        )
    )


# tuple.__new__ bound to the record class: NamedTuple._make without its Python frame (a warm
# start builds every record of the workspace through these).
_new_definition = functools.partial(tuple.__new__, Definition)
_new_reference = functools.partial(tuple.__new__, Reference)

RawEntry = tuple  # FileEntry's fields in order (without from_buffer), records as tuples


def encode_raw(raw: RawEntry) -> bytes:
    return marshal.dumps(raw)


def entry_from_raw(raw: RawEntry, *, from_buffer: bool = False) -> FileEntry:
    (path, language, size, mtime_ns, sha, lines, defs, refs, decode_errors, syntax_errors) = raw
    return FileEntry(
        path=path,
        language=language,
        size=size,
        mtime_ns=mtime_ns,
        sha256=sha,
        lines=lines,
        definitions=tuple(map(_new_definition, defs)),
        references=tuple(map(_new_reference, refs)),
        decode_errors=decode_errors,
        syntax_errors=syntax_errors,
        from_buffer=from_buffer,
    )


def decode_entry(blob: bytes) -> FileEntry:
    """Raises ValueError (or EOFError/TypeError) on a damaged blob; callers treat that as a miss."""
    return entry_from_raw(marshal.loads(blob))
