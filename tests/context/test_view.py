"""TaskView: one version of the workspace for a task. Pinned texts override the live index for
the snapshot and for every tool, and keep doing so when the index moves on."""

from __future__ import annotations

from pathlib import Path

from lsp_agent.agents.tools import Workspace, research_tools
from lsp_agent.config import ContextSettings
from lsp_agent.context.snapshot import SnapshotBuilder
from lsp_agent.context.view import TaskView
from lsp_agent.index import WorkspaceIndex

V1 = "def alpha(x):\n    return x + 1\n\n\nMARK = 1\n"
V2 = "import moved\n\n\n" + V1 + "\n\ndef beta():\n    return alpha(2)\n"
USE = "from core import alpha\n\nalpha(3)\n"


def _index(tmp_path: Path, files: dict[str, str]) -> WorkspaceIndex:
    root = tmp_path / "ws"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    index = WorkspaceIndex(root, cache_path=None)
    index.build(jobs=1)
    return index


def _call(ws: Workspace, tool: str, **args: object) -> str:
    return next(t for t in research_tools(ws) if t.name == tool).handler(dict(args))


def test_pinned_text_answers_every_lookup_after_the_index_moved_on(tmp_path: Path) -> None:
    index = _index(tmp_path, {"core.py": V1, "use.py": USE})
    view = TaskView(index, {"core.py": V1})  # frozen at v1
    index.update("core.py", V2)  # the live index takes the user's next version
    assert index.definitions("alpha")[0][1].start_line == 3  # the index is at v2

    assert view.text("core.py") == V1
    assert view.entries()["core.py"].sha256 == view.get("core.py").sha256
    assert [(p, d.start_line) for p, d in view.definitions("alpha")] == [("core.py", 0)]
    assert view.definitions("beta") == []
    assert [(p, r.line) for p, r in view.references("alpha")] == [("use.py", 0), ("use.py", 2)]
    assert view.grep("moved") == []
    assert view.grep("MARK") == [("core.py", 4, "MARK = 1")]

    ws = Workspace(view, {"core.py": V1})
    assert _call(ws, "find_definitions", name="alpha") == "core.py:1: function def alpha(x):"
    assert _call(ws, "grep", pattern="alpha") == (
        "core.py:1: def alpha(x):\nuse.py:1: from core import alpha\nuse.py:3: alpha(3)"
    )


def test_a_workspace_given_texts_pins_them_over_a_plain_index(tmp_path: Path) -> None:
    index = _index(tmp_path, {"core.py": V2, "use.py": USE})
    ws = Workspace(index, {"core.py": V1})  # the index lags the buffer
    assert _call(ws, "find_definitions", name="beta") == "no definition of 'beta'"
    assert _call(ws, "find_references", name="alpha").splitlines() == [
        "use.py:1: import alpha",
        "use.py:3: call alpha",
    ]
    assert _call(ws, "grep", pattern="MARK") == "core.py:5: MARK = 1"


def test_grep_limit_counts_after_pinned_files_are_replaced(tmp_path: Path) -> None:
    # The index's own hits in a pinned file are dropped; the limit still fills from the rest.
    index = _index(tmp_path, {"a.py": "x = 1\n" * 5, "b.py": "x = 2\n" * 5})
    view = TaskView(index, {"a.py": "y = 0\n"})
    assert view.grep("x =", limit=3) == [
        ("b.py", 0, "x = 2"),
        ("b.py", 1, "x = 2"),
        ("b.py", 2, "x = 2"),
    ]
    assert len(index.grep("x =", limit=3)) == 3


def test_first_pin_wins_and_ignored_paths_get_no_entry(tmp_path: Path) -> None:
    index = _index(tmp_path, {"core.py": V1, ".gitignore": "build/\n"})
    view = TaskView(index)
    view.pin("core.py", V1)
    view.pin("core.py", V2)  # a later rewrite does not move the task to another version
    assert view.text("core.py") == V1
    view.pin("build/gen.py", "def gen(): pass\n")
    assert "build/gen.py" not in view.entries() and view.definitions("gen") == []
    view.pin("new.py", "def fresh(): pass\n")  # a new buffer the index has not seen yet
    assert [p for p, _ in view.definitions("fresh")] == ["new.py"]
    assert list(view.entries()) == sorted(view.entries())


def test_the_snapshot_reads_the_view_not_the_index(tmp_path: Path) -> None:
    index = _index(tmp_path, {"core.py": V1, "use.py": USE})
    builder = SnapshotBuilder(index, ContextSettings(), state_dir=None)
    view = TaskView(index, {"core.py": V1})
    index.update("core.py", V2)
    snapshot = builder.build(budget=8000, focus=["core.py"], view=view)
    text = snapshot.prefix + snapshot.tail
    assert "MARK = 1" in text and "import moved" not in text and "def beta" not in text
    live = builder.build(budget=8000, focus=["core.py"])  # without the view: the index's v2
    assert "import moved" in live.prefix + live.tail
