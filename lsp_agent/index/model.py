"""The index's data model: plain frozen records, cheap to pickle between processes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

# Definition and Reference are NamedTuples rather than frozen dataclasses: a workspace holds
# hundreds of thousands of them, and a warm start rebuilds them all from the cache. A frozen
# dataclass's __init__ sets each field through object.__setattr__ (~1.2 us per record); a
# NamedTuple is built from a tuple in ~0.15 us, which took the standard library's warm start
# from 0.85 s to about a third of that. Construction (positional or keyword), attribute
# access, immutability, equality and hashing are the same for callers.


class Definition(NamedTuple):
    """A definition found by a language's tags query. Lines are 0-based; columns are 0-based
    UTF-8 byte offsets within the line (tree-sitter's native unit)."""

    name: str
    kind: (
        str  # function, method, class, interface, type, enum, struct, trait, module, constant, ...
    )
    start_line: int
    start_col: int
    end_line: int
    end_col: int
    signature: str  # the line holding the definition's name, trailing whitespace stripped
    scope: str  # dotted names of the enclosing definitions ("Outer.inner"); "" at top level


class Reference(NamedTuple):
    """An identifier occurrence that matters for ranking: a call, a type use, an import."""

    name: str
    kind: str  # call, type, import, ...
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class FileEntry:
    """Everything the index knows about one file. ``path`` is POSIX, relative to the root.

    ``definitions`` and ``references`` are sequences of records (tuples when built by hand;
    for entries the index builds, views that decode on access: see symtab.py). Their ``len``
    is free, iterating them decodes the file's records."""

    path: str
    language: str | None  # None: a text file with no grammar (README, TOML, ...); not parsed
    size: int
    mtime_ns: int
    sha256: str  # of the bytes (disk) or of the UTF-8 encoded buffer text
    lines: int
    definitions: Sequence[Definition] = ()
    references: Sequence[Reference] = ()
    decode_errors: bool = False  # not valid UTF-8; decoded with replacement
    generated: bool = False  # its opening comments say a tool wrote it (generated.py)
    syntax_errors: int = 0  # ERROR/MISSING nodes in the parse tree
    from_buffer: bool = False  # content came from an open editor buffer, not disk


# Each field's slot setter: new_entry fills a FileEntry through them, as a frozen dataclass's
# __init__ cannot (it goes through object.__setattr__ per field, ~3.5 us an entry positional
# and ~6 us by keyword, against ~1.3 us here: a warm start of the kernel makes 78k).
_set_path, _set_language, _set_size, _set_mtime_ns, _set_sha256, _set_lines = (
    FileEntry.__dict__[name].__set__
    for name in ("path", "language", "size", "mtime_ns", "sha256", "lines")
)
_set_definitions, _set_references, _set_decode_errors, _set_generated = (
    FileEntry.__dict__[name].__set__
    for name in ("definitions", "references", "decode_errors", "generated")
)
_set_syntax_errors, _set_from_buffer = (
    FileEntry.__dict__[name].__set__ for name in ("syntax_errors", "from_buffer")
)


def new_entry(
    path: str,
    language: str | None,
    size: int,
    mtime_ns: int,
    sha256: str,
    lines: int,
    definitions: Sequence[Definition],
    references: Sequence[Reference],
    decode_errors: bool,
    generated: bool,
    syntax_errors: int,
    from_buffer: bool,
) -> FileEntry:
    """``FileEntry(...)`` with every field given, in field order, made without its __init__
    (tests/index/test_model.py checks every field is set and equal)."""
    entry = object.__new__(FileEntry)
    _set_path(entry, path)
    _set_language(entry, language)
    _set_size(entry, size)
    _set_mtime_ns(entry, mtime_ns)
    _set_sha256(entry, sha256)
    _set_lines(entry, lines)
    _set_definitions(entry, definitions)
    _set_references(entry, references)
    _set_decode_errors(entry, decode_errors)
    _set_generated(entry, generated)
    _set_syntax_errors(entry, syntax_errors)
    _set_from_buffer(entry, from_buffer)
    return entry


@dataclass(slots=True)
class IndexStats:
    files: int = 0
    languages: dict[str, int] = field(default_factory=dict)  # language -> file count
    definitions: int = 0
    references: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    decode_errors: int = 0
    generated: int = 0  # files marked as generated (ranked down in the snapshot)
    parsed: int = 0  # files (re)parsed in this build
    from_cache: int = 0  # files reused from the on-disk cache
    seconds: float = 0.0
