"""Test files, ranked down in the stable prefix.

Tests reference much of the code and share helpers among themselves, so the reference graph
ranks them high (in the standard library, 26 of the top 100 files are tests); in the prefix
they crowd out the code they test. The focus neighbourhood (the tail) does not rank them down:
a task on a test should see the tests around it.
"""

from __future__ import annotations

import posixpath
import re

TEST_WEIGHT = 0.1  # the factor on a test file's stable score, like aider's x0.1 weights
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


def is_test_path(path: str) -> bool:
    """Under a tests directory, or named like a test file in a common ecosystem."""
    parts = path.split("/")
    if any(part.lower() in _TEST_DIRS for part in parts[:-1]):
        return True
    return _TEST_FILE.fullmatch(posixpath.basename(path)) is not None


def rank_down_tests(scores: dict[str, float]) -> dict[str, float]:
    """The stable scores with test files' scores times TEST_WEIGHT."""
    return {p: s * TEST_WEIGHT if is_test_path(p) else s for p, s in scores.items()}
