"""Test files are ranked down in the stable prefix (not in the focus neighbourhood)."""

from __future__ import annotations

import dataclasses
import sysconfig
from pathlib import Path

import pytest

from lsp_agent.config import ContextSettings
from lsp_agent.context.ranking import build_graph, order, pagerank, summarize
from lsp_agent.context.snapshot import SnapshotBuilder
from lsp_agent.context.testfiles import GENERATED_WEIGHT, _rule, is_test_path, rules
from lsp_agent.index.model import FileEntry

from .test_ranking import fe


@pytest.mark.parametrize(
    "path",
    [
        "tests/helpers.py",
        "pkg/test/data.json",
        "pkg/test_store.py",
        "store_test.py",
        "conftest.py",
        "cmd/server_test.go",
        "web/src/app.spec.ts",
        "web/src/app.test.jsx",
        "src/main/java/ShopTest.java",
        "src/__tests__/cart.js",
    ],
)
def test_test_files_are_recognised(path: str) -> None:
    assert is_test_path(path)


@pytest.mark.parametrize(
    "path", ["unittest/case.py", "latest.py", "contest.py", "testing_utils.py", "attest/x.py"]
)
def test_code_is_not_taken_for_tests(path: str) -> None:
    assert not is_test_path(path)


class FakeIndex:
    def __init__(self, entries: list[FileEntry]) -> None:
        self._entries = {e.path: e for e in sorted(entries, key=lambda e: e.path)}

    def entries(self) -> dict[str, FileEntry]:
        return dict(self._entries)

    def text(self, path: str) -> str | None:
        return f"# {path}\n" if path in self._entries else None


def test_a_test_helper_used_by_every_test_ranks_below_the_code() -> None:
    entries = [
        fe("app/core.py", ["core_function"]),
        fe("app/main.py", ["main"], ["core_function"]),
        fe("tests/helpers.py", ["helper_function"]),
        *(fe(f"tests/test_{c}.py", [f"test_{c}"], ["helper_function"]) for c in "abcde"),
    ]
    raw = pagerank(build_graph({e.path: summarize(e) for e in entries}))
    assert order(raw)[0] == "tests/helpers.py"  # the graph alone puts the test helper first
    snap = SnapshotBuilder(FakeIndex(entries), ContextSettings(), state_dir=None).build(budget=4000)
    ranks = {e.path: e for e in snap.manifest.files if e.section == "prefix"}
    assert ranks["app/core.py"].rank == 1
    assert ranks["app/core.py"].rank < ranks["tests/helpers.py"].rank
    assert "a test file, ranked down" in ranks["tests/helpers.py"].reason
    assert "ranked down" not in ranks["app/core.py"].reason
    assert snap.prefix.index("=== app/core.py") < snap.prefix.index("=== tests/helpers.py")


def test_a_generated_file_ranks_below_an_identical_hand_written_one() -> None:
    # Two headers with the same definitions, used the same way: only the flag differs.
    regs = [fe(name, [f"{name[:-2]}_reg"]) for name in ("gen_regs.h", "hand_regs.h")]
    generated = dataclasses.replace(regs[0], generated=True)
    users = [fe(f"drv_{c}.c", [f"drv_{c}"], ["gen_regs_reg", "hand_regs_reg"]) for c in "abc"]
    entries = [generated, regs[1], *users]
    raw = pagerank(build_graph({e.path: summarize(e) for e in entries}))
    assert raw["gen_regs.h"] == raw["hand_regs.h"]  # the graph cannot tell them apart
    assert order(raw)[0] == "gen_regs.h"  # and the tie goes to the generated one by path
    snap = SnapshotBuilder(FakeIndex(entries), ContextSettings(), state_dir=None).build(budget=4000)
    ranks = {e.path: e for e in snap.manifest.files if e.section == "prefix"}
    assert ranks["hand_regs.h"].rank == 1
    assert ranks["hand_regs.h"].rank < ranks["gen_regs.h"].rank
    assert ranks["gen_regs.h"].score == pytest.approx(raw["gen_regs.h"] * GENERATED_WEIGHT)
    assert "generated, ranked down" in ranks["gen_regs.h"].reason
    assert "ranked down" not in ranks["hand_regs.h"].reason
    assert snap.prefix.index("=== hand_regs.h") < snap.prefix.index("=== gen_regs.h")


TRICKY_PATHS = [
    *("tests/helpers.py", "pkg/test/data.json", "pkg/test_store.py", "store_test.py"),
    *("conftest.py", "a/conftest.py", "a/conftest.pyx", "src/__tests__/cart.js", "Tests/x.c"),
    *("TOOLS/gen.py", "a/tools", "tools.py", "a/scripts/b/c.sh", "samples/x", "a/Examples/b"),
    *("tests", "a//tests/b", "x/test_a.py/y.c", "a_test.go/x.c", "lib/app.test.ts", "x/latest.py"),
    *("tools/testing/selftests/x.c", "scripts/test_x.py", "kernel/sched/core.c", "README", ""),
    *("src/FooTest.java", "src/FooTests.cs", "web/a.spec.tsx", "lib/b_spec.rb", "x/y_test.rs"),
    *("m/attest.py", "m/Testing.py", "m/inspect.py", "m/spectrum.c", "m/test.py", "m/_test.py"),
]


def test_the_rule_for_a_real_tree_gives_each_path_its_own_answer() -> None:
    # The stdlib and site-packages: test_*.py and *_test.py beside their modules, tests/ trees
    root = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())
    assert len(paths) > 5000
    flags = [i % 7 == 0 for i in range(len(paths))]
    answers = rules(paths, flags)
    assert answers == [_rule(p, g) for p, g in zip(paths, flags, strict=True)]
    assert sum(reason == "a test file, ranked down" for _, reason in answers) > 500


@pytest.mark.parametrize("generated", [False, True])
def test_the_rule_for_a_whole_tree_gives_each_path_its_own_answer(generated: bool) -> None:
    flags = [generated or i % 3 == 0 for i in range(len(TRICKY_PATHS))]
    answers = rules(TRICKY_PATHS, flags)
    assert answers == [_rule(p, g) for p, g in zip(TRICKY_PATHS, flags, strict=True)]
    assert {reason for _, reason in answers} >= {
        "a test file, ranked down",
        "tooling or samples, ranked down",
        "generated, ranked down",
    }
