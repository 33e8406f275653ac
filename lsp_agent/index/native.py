"""The C extraction (``_tags.c``) when it was built and matches the installed runtime.

``symbols.extract_raw`` asks here for a whole-file extractor. ``None`` means the Python loop:
the extension was not built (no C compiler at install time), or the installed py-tree-sitter
is not the version whose runtime is vendored. Buffers and incremental updates are parsed by
py-tree-sitter; a different runtime there could parse the same bytes differently, so the
cached symbols of a cold build would not match what an edit makes.
"""

from __future__ import annotations

import functools
import importlib
from typing import Protocol

import tree_sitter

from lsp_agent.index.languages import BY_NAME

VENDORED_RUNTIME = "0.26.1"  # vendor/tree-sitter: the core sources of this tree-sitter sdist


class Extractor(Protocol):
    def extract(self, source: bytes, /) -> tuple[tuple, tuple, int]: ...


@functools.cache
def available() -> bool:
    try:
        importlib.import_module("lsp_agent.index._tags")
    except ImportError:
        return False
    return getattr(tree_sitter, "__version__", None) == VENDORED_RUNTIME


@functools.cache
def extractor(language: str) -> Extractor | None:
    """The language's extractor, made once per process; it holds the GIL while it runs, so
    threads may share it."""
    if not available():
        return None
    from lsp_agent.index import _tags

    spec = BY_NAME[language]
    grammar = getattr(importlib.import_module(spec.module), spec.loader)()
    return _tags.Extractor(grammar, spec.query_path.read_bytes())  # type: ignore[no-any-return]
