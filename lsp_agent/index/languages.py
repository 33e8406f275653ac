"""The language table: which files a grammar applies to, where the grammar comes from, and which
tags query to run. Adding a language is a row here plus ``queries/<name>.scm``.

Grammars come from the official per-language wheels (``tree-sitter-python`` ...), which ship
compiled parsers and work offline. Grammars and queries are loaded lazily and cached for the life
of the process: compiling a tags query costs milliseconds, which dominates when done per file.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tree_sitter import Language, Parser, Query

QUERY_DIR = Path(__file__).with_name("queries")


@dataclass(frozen=True)
class LanguageSpec:
    name: str
    extensions: tuple[str, ...]  # lower-case, with the dot
    module: str  # the grammar wheel's import name
    loader: str = "language"  # the function in ``module`` returning the grammar pointer
    query_file: str = ""  # under queries/; defaults to "<name>.scm"

    @property
    def query_path(self) -> Path:
        return QUERY_DIR / (self.query_file or f"{self.name}.scm")


LANGUAGES: tuple[LanguageSpec, ...] = (
    LanguageSpec("python", (".py", ".pyi", ".pyw"), "tree_sitter_python"),
    LanguageSpec("javascript", (".js", ".mjs", ".cjs", ".jsx"), "tree_sitter_javascript"),
    LanguageSpec(
        "typescript", (".ts", ".mts", ".cts"), "tree_sitter_typescript", "language_typescript"
    ),
    LanguageSpec("tsx", (".tsx",), "tree_sitter_typescript", "language_tsx", "typescript.scm"),
    LanguageSpec("go", (".go",), "tree_sitter_go"),
    LanguageSpec("rust", (".rs",), "tree_sitter_rust"),
    LanguageSpec("java", (".java",), "tree_sitter_java"),
    LanguageSpec("c", (".c", ".h"), "tree_sitter_c"),
    LanguageSpec(
        "cpp",
        (".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".h++", ".ipp"),
        "tree_sitter_cpp",
    ),
)

BY_NAME: dict[str, LanguageSpec] = {spec.name: spec for spec in LANGUAGES}
_BY_EXTENSION: dict[str, str] = {ext: spec.name for spec in LANGUAGES for ext in spec.extensions}


def language_for_path(path: str) -> str | None:
    """The language name for a path, by extension; None when no grammar applies."""
    return _BY_EXTENSION.get(PurePosixPath(path).suffix.lower())


@functools.cache
def load_language(name: str) -> Language:
    spec = BY_NAME[name]
    module = importlib.import_module(spec.module)
    return Language(getattr(module, spec.loader)())


@functools.cache
def load_query(name: str) -> Query:
    """The compiled tags query for a language, compiled once per process."""
    return Query(load_language(name), BY_NAME[name].query_path.read_text(encoding="utf-8"))


def new_parser(name: str) -> Parser:
    # Parsers hold mutable state, so each caller (thread) gets its own; creating one is cheap.
    return Parser(load_language(name))


def warm_up(names: tuple[str, ...] | None = None) -> None:
    """Load every grammar and compile every query now (pool worker initializer)."""
    for name in BY_NAME if names is None else names:
        load_query(name)


@functools.cache
def fingerprint() -> str:
    """Changes whenever a grammar package or a query file changes: cached symbols built with
    different grammars or queries must not be reused. A grammar package is known by its
    files' names, sizes and mtimes (its compiled parser among them: an upgrade or a rebuild
    changes them), not by importlib.metadata, whose import alone took ~60 ms of every start."""
    import tree_sitter

    digest = hashlib.sha256()
    for spec in LANGUAGES:
        digest.update(spec.name.encode())
        digest.update(_package_stamp(spec.module))
        digest.update(spec.query_path.read_bytes())
    digest.update(str(getattr(tree_sitter, "__version__", "?")).encode())
    digest.update(_package_stamp("tree_sitter"))
    return digest.hexdigest()[:16]


def _package_stamp(module: str) -> bytes:
    """(name, size, mtime) of each file in the folder of an installed package, without
    importing it; ``?`` when it is not installed."""
    import importlib.util
    import os

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        return b"?"
    folder = os.path.dirname(spec.origin)
    stamps = []
    try:
        with os.scandir(folder) as listing:
            for entry in listing:
                if entry.is_file() and not entry.name.endswith(".pyc"):
                    st = entry.stat()
                    stamps.append(f"{entry.name}\0{st.st_size}\0{st.st_mtime_ns}")
    except OSError:
        return b"?"
    return "\n".join(sorted(stamps)).encode()
