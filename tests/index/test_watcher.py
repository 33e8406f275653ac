"""The watcher sees writes made outside the editor and keeps ignored paths out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lsp_agent.index.watcher import watch
from lsp_agent.index.watchgroup import NotifyGroup
from lsp_agent.index.workspace import WorkspaceIndex
from tests.index.test_discovery import write

TIMEOUT = 30.0  # a hang guard: at load average 10 the OS watch and the refresh thread lag


async def _wait_for(condition, changes: asyncio.Queue) -> None:  # type: ignore[no-untyped-def]
    async def loop() -> None:
        while not condition():
            await changes.get()

    await asyncio.wait_for(loop(), TIMEOUT)


async def _until_watching(root: Path, seen: list[set[str]]) -> None:
    """The OS watch starts some time after ``watch`` does (longer on a loaded machine): touch
    a probe file until the watcher reports it, instead of sleeping and hoping."""

    async def loop() -> None:
        n = 0
        while not any("probe.py" in batch for batch in seen):
            n += 1
            write(root, "probe.py", f"PROBE = {n}\n")
            await asyncio.sleep(0.1)

    await asyncio.wait_for(loop(), TIMEOUT)


@contextlib.asynccontextmanager
async def _watching(
    index: WorkspaceIndex,
) -> AsyncIterator[tuple[asyncio.Queue[set[str]], list[set[str]]]]:
    """The watcher running on ``index``, already watching: (the queue of changed-path
    batches, every batch seen). It is stopped on exit."""
    stop = asyncio.Event()
    changes: asyncio.Queue[set[str]] = asyncio.Queue()
    seen: list[set[str]] = []

    def on_change(paths: set[str]) -> None:
        seen.append(paths)
        changes.put_nowait(paths)

    task = asyncio.create_task(watch(index, stop=stop, debounce_ms=50, on_change=on_change))
    try:
        await _until_watching(index.root, seen)
        yield changes, seen
    finally:
        stop.set()
        await asyncio.wait_for(task, TIMEOUT)


async def test_watcher_sees_outside_create_modify_delete(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "ignored/\n")
    write(tmp_path, "a.py", "def first(): pass\n")
    index = WorkspaceIndex(tmp_path, cache_path=None)
    index.build(jobs=1)
    async with _watching(index) as (changes, seen):
        write(tmp_path, "ignored/skip.py", "def nope(): pass\n")
        write(tmp_path, "a.py", "def second(): pass\n")
        write(tmp_path, "b.py", "def created(): pass\n")
        await _wait_for(
            lambda: index.definitions("second") and index.definitions("created"), changes
        )
        (tmp_path / "b.py").rename(tmp_path / "c.py")
        await _wait_for(lambda: index.get("b.py") is None and index.get("c.py"), changes)
        (tmp_path / "a.py").unlink()
        await _wait_for(lambda: index.get("a.py") is None, changes)
    assert index.definitions("first") == []
    assert index.get("ignored/skip.py") is None
    assert all(not p.startswith("ignored/") for batch in seen for p in batch)
    assert sorted(index.entries()) == [".gitignore", "c.py", "probe.py"]


async def test_a_change_made_while_the_watch_set_is_replaced_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-plan starts new notifiers, then retires the old ones. A file deleted just before
    the new watches exist is seen only by an old notifier, still inside its debounce: stopping
    it at once dropped the change (the index kept a deleted file)."""
    write(tmp_path, "a.py", "def first(): pass\n")
    index = WorkspaceIndex(tmp_path, cache_path=None)
    index.build(jobs=1)
    real_start_all = NotifyGroup.start_all
    starts = 0

    async def start_all(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal starts
        starts += 1
        if starts == 2:  # the re-plan: only the old notifier is watching now
            (tmp_path / "a.py").unlink()
        return await real_start_all(*args, **kwargs)

    monkeypatch.setattr(NotifyGroup, "start_all", start_all)
    async with _watching(index) as (changes, _seen):
        write(tmp_path, "pkg/b.py", "B = 1\n")  # a new folder: the watch set is redone
        await _wait_for(lambda: index.get("a.py") is None, changes)
    assert starts >= 2
    assert index.definitions("first") == []
