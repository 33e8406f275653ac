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

import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import compress, repeat
from operator import contains, itemgetter, mul

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
_TEST_WORDS = ("test", "Test", "spec")  # every name _TEST_FILE matches holds one of them


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
    # posixpath.basename's own result, without its Python frames (78k paths per prefix)
    return _TEST_FILE.fullmatch(path.rpartition("/")[2]) is not None


def is_support_path(path: str) -> bool:
    """Under a tools, scripts, samples or examples directory (at any depth)."""
    return _IN_SUPPORT_DIR(path) is not None


def _rule(path: str, generated: bool) -> tuple[float, str]:
    """The one rule: (the factor on the stable score, why the manifest says it was applied);
    (1.0, "") when the file keeps its score. One reason per file, the first that applies."""
    test = is_test_path(path)
    return _answer(test, not test and is_support_path(path), generated)


def _answer(test: bool, support: bool, generated: bool) -> tuple[float, str]:
    if test:
        return TEST_WEIGHT, "a test file, ranked down"
    if support:
        return SUPPORT_WEIGHT, "tooling or samples, ranked down"
    if generated:
        return GENERATED_WEIGHT, "generated, ranked down"
    return 1.0, ""


_NONE, _TESTS, _SUPPORT = 0, 1, 2  # what a folder is, by the folders in its path
# (the folder's kind, named like a test, generated) -> the rule's answer
_ANSWERS = {
    (kind, named, generated): _answer(kind == _TESTS or named, kind == _SUPPORT, generated)
    for kind in (_NONE, _TESTS, _SUPPORT)
    for named in (False, True)
    for generated in (False, True)
}


def rules(paths: Sequence[str], generated: Iterable[bool]) -> list[tuple[float, str]]:
    """``_rule`` of each path with its ``generated`` flag, the same answers for a whole tree:
    the folders' part once per folder (the kernel's 78k files are in 5k folders: a folder
    named in a path is in its folder's path and its "/"), the file names' by C-level maps."""
    parts = list(map(str.rpartition, paths, repeat("/")))
    folders = list(map(itemgetter(0), parts))
    kinds: dict[str, int] = {}
    for folder in set(folders):
        probe = f"{folder}/"
        kinds[folder] = (
            _TESTS if _IN_TEST_DIR(probe) else _SUPPORT if _IN_SUPPORT_DIR(probe) else _NONE
        )
    names = list(map(itemgetter(2), parts))
    # Only a name with one of these in it can match (a substring test is ~10x a fullmatch)
    candidates: set[int] = set()
    for word in _TEST_WORDS:
        candidates.update(compress(range(len(names)), map(contains, names, repeat(word))))
    named = [False] * len(names)
    for at in candidates:
        named[at] = _TEST_FILE.fullmatch(names[at]) is not None
    keys = zip(map(kinds.__getitem__, folders), named, map(bool, generated), strict=True)
    return list(map(_ANSWERS.__getitem__, keys))


def ranked_down(path: str, generated: bool = False) -> str:
    """Why the stable prefix ranks this file down ("" when it does not). ``generated``: the
    index's ``FileEntry.generated``."""
    return _rule(path, generated)[1]


def rank_down_tests(
    scores: dict[str, float], entries: Mapping[str, FileEntry]
) -> tuple[dict[str, float], dict[str, str]]:
    """The stable scores with the rule's factors applied: tests', tooling's and generated
    files' (``entries`` says which are generated) scores times their weights; and why, for
    each file ranked down (the prefix's manifest says it: one pass of the rule serves both)."""
    get = entries.get
    generated = [entry is not None and entry.generated for entry in map(get, scores)]
    answers = rules(list(scores), generated)
    # x * 1.0 is x, bit for bit: every score is multiplied, by C-level maps
    ranked = dict(zip(scores, map(mul, scores.values(), map(itemgetter(0), answers)), strict=True))
    return ranked, {path: why for path, (_, why) in zip(scores, answers, strict=True) if why}
