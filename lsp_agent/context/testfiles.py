"""Test files and tooling, ranked down in the stable prefix.

Tests reference much of the code and share helpers among themselves, so the reference graph
ranks them high (in the standard library, 26 of the top 100 files are tests); in the prefix
they crowd out the code they test. Tooling, samples and examples (``tools/``, ``scripts/``,
``samples/``, ``examples/``) do the same on a large tree: the kernel's tools/ keeps its own
stand-ins of include/linux/*.h, and 25 of its top 60 files were under tools/, scripts/ or
samples/. Generated files (register maps, charset tables, protocol buffers: the index marks
them, see index/generated.py) are referenced everywhere and read by nobody: the kernel's
habanalabs register headers alone are 349 files. The focus neighbourhood (the tail) ranks none
of them down: a task on a test, a tool or a generated file should see the files around it.
PageRank itself is untouched: these are factors on its scores.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping

from lsp_agent.index.model import FileEntry

TEST_WEIGHT = 0.1  # the factor on a test file's stable score, like aider's x0.1 weights
SUPPORT_WEIGHT = 0.1  # the same for tooling, samples and examples
GENERATED_WEIGHT = 0.1  # the same for a file the index found generated
_SUPPORT_DIRS = frozenset({"tools", "scripts", "samples", "examples"})
_TEST_DIRS = frozenset({"test", "tests", "testing", "__tests__", "spec", "specs"})
_TEST_FILE = re.compile(
    r"""(?x)
      test_[^/]*\.py | [^/]*_tests?\.py | conftest\.py     # pytest / unittest
    | [^/]*_test\.(?:go|rs|c|cc|cpp|exs?|rb)             # Go, Rust, C/C++, Elixir, Ruby
    | [^/]*_spec\.rb
    | [^/]*\.(?:test|spec)\.(?:[cm]?[jt]sx?)             # Jest, Vitest, Mocha
    | [^/]*Tests?\.(?:java|kt|cs|swift)                  # JUnit, xUnit, XCTest
    """
)


# A folder (a path part followed by "/") named like one of the sets: one regex search per path,
# since a kernel-sized tree asks for 78k paths per prefix build.
_IN_TEST_DIR = re.compile(
    "(?:^|/)(?:" + "|".join(map(re.escape, sorted(_TEST_DIRS))) + ")/", re.IGNORECASE
).search
_IN_SUPPORT_DIR = re.compile(
    "(?:^|/)(?:" + "|".join(map(re.escape, sorted(_SUPPORT_DIRS))) + ")/", re.IGNORECASE
).search


def is_test_path(path: str) -> bool:
    """Under a tests directory, or named like a test file in a common ecosystem."""
    if _IN_TEST_DIR(path) is not None:
        return True
    return _TEST_FILE.fullmatch(posixpath.basename(path)) is not None


def is_support_path(path: str) -> bool:
    """Under a tools, scripts, samples or examples directory (at any depth)."""
    return _IN_SUPPORT_DIR(path) is not None


def _rule(path: str, generated: bool) -> tuple[float, str]:
    """The one rule: (the factor on the stable score, why the manifest says it was applied);
    (1.0, "") when the file keeps its score. One reason per file, the first that applies."""
    if is_test_path(path):
        return TEST_WEIGHT, "a test file, ranked down"
    if is_support_path(path):
        return SUPPORT_WEIGHT, "tooling or samples, ranked down"
    if generated:
        return GENERATED_WEIGHT, "generated, ranked down"
    return 1.0, ""


def ranked_down(path: str, generated: bool = False) -> str:
    """Why the stable prefix ranks this file down ("" when it does not). ``generated``: the
    index's ``FileEntry.generated``."""
    return _rule(path, generated)[1]


def rank_down_tests(scores: dict[str, float], entries: Mapping[str, FileEntry]) -> dict[str, float]:
    """The stable scores with the rule's factors applied: tests', tooling's and generated
    files' (``entries`` says which are generated) scores times their weights."""
    out = {}
    for path, score in scores.items():
        entry = entries.get(path)
        factor = _rule(path, entry is not None and entry.generated)[0]
        out[path] = score * factor if factor != 1.0 else score
    return out
