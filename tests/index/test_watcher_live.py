"""The live watcher on a tree with ignored folders: what the OS watches and what reaches the index.

Which directories are watched is read from the kernel (/proc/self/fdinfo of the inotify fds:
one "inotify wd:" line per watched inode), so these tests check the real watch set."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from lsp_agent.index.watcher import watch
from lsp_agent.index.workspace import WorkspaceIndex
from tests.index.test_discovery import write

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads inotify watches from /proc"
)
TIMEOUT = 10.0


def watched_inodes() -> set[int]:
    inodes: set[int] = set()
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            with open(f"/proc/self/fdinfo/{fd}") as handle:
                lines = handle.readlines()
        except OSError:
            continue  # closed meanwhile
        for line in lines:
            if line.startswith("inotify wd:"):
                field = next(f for f in line.split() if f.startswith("ino:"))
                inodes.add(int(field[4:], 16))
    return inodes


def is_watched(path: Path) -> bool:
    return path.stat().st_ino in watched_inodes()


async def until(condition: Callable[[], object]) -> None:
    async def loop() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(loop(), TIMEOUT)


class Running:
    def __init__(self, index: WorkspaceIndex) -> None:
        self.index = index
        self.seen: list[set[str]] = []


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    (tmp_path / ".git" / "info").mkdir(parents=True)
    write(tmp_path, ".gitignore", "node_modules/\ngen/\n")
    for i in range(30):
        write(tmp_path, f"node_modules/pkg{i}/lib/index.js", "module.exports = 1\n")
    write(tmp_path, "src/app/main.py", "def main(): pass\n")
    write(tmp_path, "gen/made.py", "def generated(): pass\n")
    index = WorkspaceIndex(tmp_path, cache_path=None)
    index.build(jobs=1)
    run = Running(index)
    stop = asyncio.Event()
    task = asyncio.create_task(watch(index, stop=stop, debounce_ms=50, on_change=run.seen.append))
    await until(lambda: is_watched(tmp_path / "src" / "app"))
    try:
        yield run
    finally:
        stop.set()
        await asyncio.wait_for(task, TIMEOUT)


async def test_outside_write_seen_and_ignored_tree_never_watched(
    running: Running, tmp_path: Path
) -> None:
    index = running.index
    watched = watched_inodes()
    assert (tmp_path / "src").stat().st_ino in watched
    assert (tmp_path / ".git" / "info").stat().st_ino in watched
    below_ignored = [
        Path(d) for top in ("node_modules", "gen") for d, _, _ in os.walk(tmp_path / top)
    ]
    assert len(below_ignored) == 62
    assert all(d.stat().st_ino not in watched for d in below_ignored)
    write(tmp_path, "node_modules/pkg3/lib/index.js", "function hidden() {}\n")
    write(tmp_path, "node_modules/pkg3/lib/extra.py", "def hidden_py(): pass\n")
    write(tmp_path, "src/app/main.py", "def main_changed(): pass\n")
    await until(lambda: index.definitions("main_changed"))
    assert index.definitions("hidden_py") == [] and index.definitions("main") == []
    assert all(p.startswith("src/") for batch in running.seen for p in batch)


async def test_directories_created_after_start_are_watched(
    running: Running, tmp_path: Path
) -> None:
    index = running.index
    # Directly under the root (watched on its own): needs a new plan.
    (tmp_path / "fresh" / "deeper").mkdir(parents=True)
    await until(lambda: is_watched(tmp_path / "fresh" / "deeper"))
    write(tmp_path, "fresh/deeper/late.py", "def late(): pass\n")
    await until(lambda: index.definitions("late"))
    # Inside a recursively watched subtree: the notifier adds it itself.
    (tmp_path / "src" / "app" / "nested").mkdir()
    await until(lambda: is_watched(tmp_path / "src" / "app" / "nested"))
    write(tmp_path, "src/app/nested/inner.py", "def inner(): pass\n")
    await until(lambda: index.definitions("inner"))
    # An ignored folder appearing inside a recursive subtree stops being watched.
    modules = tmp_path / "src" / "app" / "node_modules"
    (modules / "dep").mkdir(parents=True)
    write(tmp_path, "src/app/node_modules/dep/index.py", "def dep(): pass\n")
    write(tmp_path, "src/app/nested/after.py", "def after(): pass\n")
    await until(lambda: index.definitions("after"))
    await until(
        lambda: not (watched_inodes() & {modules.stat().st_ino, (modules / "dep").stat().st_ino})
    )
    assert is_watched(tmp_path / "src" / "app" / "nested")
    assert index.definitions("dep") == []


async def test_gitignore_change_rewatches_directories(running: Running, tmp_path: Path) -> None:
    index = running.index
    assert index.get("gen/made.py") is None
    write(tmp_path, ".gitignore", "node_modules/\nsrc/app/\n")
    await until(lambda: index.get("gen/made.py") is not None)
    await until(lambda: is_watched(tmp_path / "gen"))
    await until(lambda: not is_watched(tmp_path / "src" / "app"))
    assert index.get("src/app/main.py") is None
    write(tmp_path, "gen/more.py", "def more(): pass\n")
    await until(lambda: index.definitions("more"))
    assert not is_watched(tmp_path / "node_modules")


async def test_watch_limit_falls_back_to_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from lsp_agent.index import watchgroup

    real = watchgroup.RustNotify
    refused: list[list[str]] = []

    def limited(paths: list[str], debug: bool, force_polling: bool, *rest: object) -> object:
        if not force_polling:  # what watchfiles raises when inotify runs out of watches
            refused.append(paths)
            raise OSError("OS file watch limit reached.")
        return real(paths, debug, force_polling, *rest)

    monkeypatch.setattr(watchgroup, "RustNotify", limited)
    caplog.set_level(logging.INFO, logger="lsp_agent.index.watcher")
    write(tmp_path, ".gitignore", "node_modules/\n")
    write(tmp_path, "node_modules/dep/index.js", "x\n")
    write(tmp_path, "src/a.py", "def before(): pass\n")
    index = WorkspaceIndex(tmp_path, cache_path=None)
    index.build(jobs=1)
    stop = asyncio.Event()
    task = asyncio.create_task(watch(index, stop=stop, debounce_ms=50))
    try:
        await until(lambda: any(r.getMessage().endswith("by polling") for r in caplog.records))
        # The poller takes its first snapshot in its own time: write until a write is seen.
        for attempt in range(int(TIMEOUT / 0.5)):
            write(tmp_path, "src/a.py", f"def polled(): pass  # {attempt}\n")
            await asyncio.sleep(0.5)
            if index.definitions("polled"):
                break
    finally:
        stop.set()
        await asyncio.wait_for(task, TIMEOUT)
    assert index.definitions("polled")
    assert refused and all("node_modules" not in p for paths in refused for p in paths)
    assert any(
        r.levelname == "ERROR" and "max_user_watches" in r.getMessage() for r in caplog.records
    )


async def test_renamed_directories_keep_being_watched(running: Running, tmp_path: Path) -> None:
    index = running.index
    write(tmp_path, "src/app/inner/deep.py", "def deep(): pass\n")
    await until(lambda: index.get("src/app/inner/deep.py") is not None)
    # Both folders lie inside the recursively watched src/ subtree.
    (tmp_path / "src" / "app" / "inner").rename(tmp_path / "src" / "app" / "moved")
    await until(lambda: index.get("src/app/moved/deep.py") is not None)
    (tmp_path / "src" / "app").rename(tmp_path / "src" / "renamed")
    await until(lambda: index.get("src/renamed/moved/deep.py") is not None)
    await until(lambda: is_watched(tmp_path / "src" / "renamed" / "moved"))
    write(tmp_path, "src/renamed/moved/deep.py", "def deeper(): pass\n")
    await until(lambda: index.definitions("deeper"))
    assert [path for path, _ in index.definitions("deeper")] == ["src/renamed/moved/deep.py"]
    assert index.get("src/app/main.py") is None and index.get("src/app/moved/deep.py") is None


async def test_cancelling_releases_every_watch(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "out/\n")
    write(tmp_path, "out/x.py")
    write(tmp_path, "src/a.py", "def a(): pass\n")
    index = WorkspaceIndex(tmp_path, cache_path=None)
    index.build(jobs=1)
    task = asyncio.create_task(watch(index))
    await until(lambda: is_watched(tmp_path / "src") and is_watched(tmp_path))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    dirs = {(tmp_path / d).stat().st_ino for d in ("", "src")}
    await until(lambda: not (watched_inodes() & dirs))


async def test_git_init_after_start_leaves_git_internals_unwatched(tmp_path: Path) -> None:
    write(tmp_path, "src/a.py", "def a(): pass\n")
    index = WorkspaceIndex(tmp_path, cache_path=None)
    index.build(jobs=1)
    stop = asyncio.Event()
    task = asyncio.create_task(watch(index, stop=stop))
    try:
        await until(lambda: is_watched(tmp_path / "src"))  # the whole root, recursively
        # No template: no .git/info/exclude whose creation would re-plan on its own.
        subprocess.run(["git", "init", "-q", "--template=", str(tmp_path)], check=True)
        internals = [Path(d) for d, _, _ in os.walk(tmp_path / ".git")]
        assert len(internals) > 5
        await until(lambda: not (watched_inodes() & {d.stat().st_ino for d in internals}))
        write(tmp_path, "src/a.py", "def after_init(): pass\n")
        await until(lambda: index.definitions("after_init"))
    finally:
        stop.set()
        await asyncio.wait_for(task, TIMEOUT)
