"""Name -> (path, record) lookup tables, maintained one file at a time.

Built lazily on the first lookup (a cold build does not pay for them) and then kept up to date
incrementally: replacing a file touches only the buckets of the names that file mentions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

from lsp_agent.index.model import Definition, FileEntry, Reference


class _Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=_Named)


class NameTable(Generic[T]):
    def __init__(self) -> None:
        self._by_name: dict[str, dict[str, list[T]]] = {}

    def add(self, path: str, records: Iterable[T]) -> None:
        for record in records:
            bucket = self._by_name.setdefault(record.name, {})
            bucket.setdefault(path, []).append(record)

    def remove(self, path: str, records: Iterable[T]) -> None:
        for name in {record.name for record in records}:
            bucket = self._by_name.get(name)
            if bucket is not None:
                bucket.pop(path, None)
                if not bucket:
                    del self._by_name[name]

    def lookup(self, name: str) -> list[tuple[str, T]]:
        bucket = self._by_name.get(name, {})
        return [(path, record) for path in sorted(bucket) for record in bucket[path]]


class SymbolTables:
    def __init__(self, entries: Iterable[FileEntry]) -> None:
        self.definitions: NameTable[Definition] = NameTable()
        self.references: NameTable[Reference] = NameTable()
        for entry in entries:
            self.add(entry)

    def add(self, entry: FileEntry) -> None:
        self.definitions.add(entry.path, entry.definitions)
        self.references.add(entry.path, entry.references)

    def remove(self, entry: FileEntry) -> None:
        self.definitions.remove(entry.path, entry.definitions)
        self.references.remove(entry.path, entry.references)
