"""The C extraction (``_tags.c``) when it was built and matches the installed runtime.

``symbols.extract_raw`` asks here for a whole-file extractor. It matches the tags patterns
itself when ``tagpatterns`` can compile the language's query, else runs the query engine.
``None`` means the Python loop: the extension was not built (no C compiler at install time),
or the installed py-tree-sitter is not the version whose runtime is vendored. Buffers and
incremental updates are parsed by py-tree-sitter; a different runtime there could parse the
same bytes differently, so the cached symbols of a cold build would not match what an edit
makes.
"""

from __future__ import annotations

import functools
import importlib
import logging
from typing import Protocol

import tree_sitter

from lsp_agent.index import tagpatterns
from lsp_agent.index.languages import BY_NAME

log = logging.getLogger(__name__)

VENDORED_RUNTIME = "0.26.1"  # vendor/tree-sitter: the core sources of this tree-sitter sdist


class Extractor(Protocol):
    uses_matcher: bool

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

    capsule = grammar(language)
    query = BY_NAME[language].query_path.read_bytes()
    try:
        patterns = tagpatterns.compile_patterns(query.decode("utf-8"))
        return _tags.Extractor(capsule, query, patterns)  # type: ignore[no-any-return]
    except ValueError as exc:
        # tagpatterns.Unsupported (outside the matcher's subset), or a node type or field this
        # grammar lacks: the query engine runs the same query, only slower.
        log.debug("%s: tags query engine, not the matcher (%s)", language, exc)
    return _tags.Extractor(capsule, query)  # type: ignore[no-any-return]


def grammar(language: str) -> object:
    """The grammar wheel's ``language()`` capsule, which the extension's runtime reads."""
    spec = BY_NAME[language]
    return getattr(importlib.import_module(spec.module), spec.loader)()
