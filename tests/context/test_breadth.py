"""Breadth before depth in the repo map (issue 16): near copies appear once, signatures stay
compact, tooling ranks below the code it serves, and the long tail is counted per folder
instead of being listed or dropped."""

from __future__ import annotations

from pathlib import Path

from lsp_agent.config import ContextSettings
from lsp_agent.context.render import FOLDER, SIGNATURES, TIER_ORDER, RenderCache
from lsp_agent.context.snapshot import SnapshotBuilder
from lsp_agent.index.model import Definition, FileEntry
from lsp_agent.index.workspace import WorkspaceIndex


def _module(n: int, tweak: str = "") -> str:
    body = [f'"""Module with {n} functions."""{tweak}', ""]
    for i in range(n):
        body += [f"def function_number_{i}(value: int) -> int:", f"    return value + {i}", ""]
    return "\n".join(body) + "\n"


def _build(root: Path, budget: int) -> tuple[WorkspaceIndex, dict[str, object], str]:
    index = WorkspaceIndex(root, cache_path=None)
    index.build(jobs=1)
    snap = SnapshotBuilder(index, ContextSettings(), state_dir=None).build(budget=budget)
    rows = {e.path: e for e in snap.manifest.files if e.section == "prefix"}
    return index, rows, snap.prefix


def test_a_near_copy_is_one_line_naming_the_file_it_repeats(tmp_path: Path) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "vendor" / "core").mkdir(parents=True)
    (tmp_path / "core" / "mathlib.py").write_text(_module(40))
    (tmp_path / "vendor" / "core" / "mathlib.py").write_text(_module(40, "  # vendored"))
    (tmp_path / "app.py").write_text("from core.mathlib import function_number_1\n")
    _, rows, prefix = _build(tmp_path, 200_000)
    original, copy = rows["core/mathlib.py"], rows["vendor/core/mathlib.py"]
    assert original.tier == "full" and copy.tier == "path"
    assert copy.reason.endswith("path only; nearly core/mathlib.py (1 line differs)")
    assert "vendor/core/mathlib.py (near copy of core/mathlib.py: 1 line differs)\n" in prefix
    assert prefix.count("def function_number_7(") == 1


def test_the_long_tail_is_counted_per_folder(tmp_path: Path) -> None:
    for package in range(12):
        for module in range(25):
            folder = tmp_path / f"pkg{package:02}" / ("sub" if module % 2 else "")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"mod{module:02}.py").write_text(f"def f{package}_{module}():\n    pass\n")
    index, rows, prefix = _build(tmp_path, 4000)
    assert sorted(rows) == sorted(index.entries())  # every file has its manifest row
    counted = [e for e in rows.values() if e.tier == FOLDER]
    assert len(counted) > 50
    assert "## Other folders (files not listed above, counted per folder)\n" in prefix
    # the folder lines count exactly the files at the folder tier
    section = prefix.split("## Other folders")[1].splitlines()[1:]
    total = sum(int(line.rsplit("(", 1)[1].split()[0]) for line in section if line)
    assert total == len(counted)
    assert all("counted under pkg" in e.reason for e in counted)
    ranked = sorted(rows.values(), key=lambda e: e.rank)
    tiers = [TIER_ORDER[e.tier] for e in ranked if e.rank]
    assert tiers == sorted(tiers)
    assert {"full", "path", FOLDER} <= {e.tier for e in ranked}


def test_cutting_a_folder_line_drops_the_files_it_counts(tmp_path: Path) -> None:
    for module in range(300):
        folder = tmp_path / f"pkg{module % 3}"
        folder.mkdir(exist_ok=True)
        (folder / f"mod{module:03}.py").write_text(f"def f{module}():\n    pass\n")
    index = WorkspaceIndex(tmp_path, cache_path=None)
    index.build(jobs=1)
    builder = SnapshotBuilder(index, ContextSettings(), state_dir=None)
    builder.build(budget=3000)
    state = next(iter(builder._states.values()))
    folders = [s for s in state.segments if s.kind == FOLDER]
    assert folders
    _, _, dropped = state.cut(state.tokens - folders[-1].tokens)  # the last line goes
    counted_last = [
        p for p, r in state.files.items() if r.tier == FOLDER and p.startswith(folders[-1].path)
    ]
    assert counted_last and set(counted_last) == set(dropped)


def test_tooling_ranks_below_the_code_it_serves(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "tools" / "helpers.py").write_text("def shared_helper_function():\n    pass\n")
    (tmp_path / "lib" / "core.py").write_text("def core_function_here():\n    pass\n")
    for name in "abcdef":
        (tmp_path / "tools" / f"{name}.py").write_text("shared_helper_function()\n")
    (tmp_path / "lib" / "main.py").write_text("core_function_here()\n")
    _, rows, _ = _build(tmp_path, 4000)
    assert rows["lib/core.py"].rank == 1
    assert "tooling or samples, ranked down" in rows["tools/helpers.py"].reason
    assert "ranked down" not in rows["lib/core.py"].reason


def test_signatures_fold_constant_runs_and_name_the_overflow() -> None:
    lines = [f"#define REG_{i} {i}" for i in range(30)]
    lines += [f"int function_{i}(int a);" for i in range(200)]
    text = "\n".join(lines) + "\n"
    definitions = tuple(
        Definition(f"REG_{i}", "macro", i, 0, i + 1, 0, lines[i], "") for i in range(30)
    ) + tuple(
        Definition(f"function_{i}", "function", 30 + i, 0, 30 + i, 20, lines[30 + i], "")
        for i in range(200)
    )
    entry = FileEntry("regs.h", "c", len(text), 0, "sha", len(lines), definitions, ())
    rendered = RenderCache().render(entry, SIGNATURES, lambda: text) or ""
    assert " 1: #define REG_0 0\n" in rendered and " 4: #define REG_3 3\n" in rendered
    assert "[... 26 more macros, lines 5-30: REG_4 ... REG_29]" in rendered
    assert "#define REG_4 " not in rendered
    assert "more definitions, by name: function_" in rendered
    assert "function_199" in rendered  # named, not shown with its line
    assert "int function_199(" not in rendered
