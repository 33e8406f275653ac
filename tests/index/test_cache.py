"""The SQLite cache: warm start, invalidation, deletions, corruption, schema changes."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest

from lsp_agent.config import IndexSettings, workspace_cache_dir
from lsp_agent.index import cache as cache_module
from lsp_agent.index import pool, symtab
from lsp_agent.index import workspace as workspace_module
from lsp_agent.index.workspace import WorkspaceIndex
from tests.index.test_discovery import write


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write(root, "a.py", "def alpha():\n    return beta()\n")
    write(root, "b.py", "def beta():\n    return 2\n")
    write(root, "c.go", "package c\n\nfunc Gamma() int { return 3 }\n")
    return root


def fresh(root: Path) -> WorkspaceIndex:
    return WorkspaceIndex(root, IndexSettings())


def test_cache_lives_in_the_workspace_cache_dir(project: Path, isolated_cache: Path) -> None:
    index = fresh(project)
    assert index.cache_path == workspace_cache_dir(project) / "index.sqlite"
    assert index.cache_path.is_relative_to(isolated_cache)
    index.build(jobs=1)
    assert index.cache_path.exists()


def test_warm_start_reads_only_what_changed(project: Path) -> None:
    cold = fresh(project).build(jobs=1)
    assert (cold.parsed, cold.from_cache) == (3, 0)
    warm_index = fresh(project)
    warm = warm_index.build(jobs=1)
    assert (warm.parsed, warm.from_cache) == (3 - 3, 3)
    assert warm_index.entries() == _cold_entries(project)

    write(project, "b.py", "def beta_renamed():\n    return 2\n")
    (project / "c.go").unlink()
    write(project, "d.py", "D = 4\n")
    index = fresh(project)
    stats = index.build(jobs=1)
    assert (stats.parsed, stats.from_cache) == (2, 1)
    assert sorted(index.entries()) == ["a.py", "b.py", "d.py"]
    assert [p for p, _ in index.definitions("beta_renamed")] == ["b.py"]
    assert index.definitions("beta") == []
    # The deleted file is gone from the cache too, not only from memory.
    rows = sqlite3.connect(index.cache_path).execute("SELECT path FROM files").fetchall()
    assert sorted(r[0] for r in rows) == ["a.py", "b.py", "d.py"]


def test_same_size_edit_with_restored_mtime_is_caught_by_size_or_mtime(project: Path) -> None:
    fresh(project).build(jobs=1)
    path = project / "b.py"
    st = path.stat()
    path.write_text("def gamma():\n    return 2\n")  # same size, different content
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    index = fresh(project)
    index.build(jobs=1)
    assert [p for p, _ in index.definitions("gamma")] == ["b.py"]


def test_touched_file_is_hash_checked_not_reparsed(project: Path) -> None:
    fresh(project).build(jobs=1)
    os.utime(project / "a.py", ns=(1, 1))
    stats = fresh(project).build(jobs=1)
    assert (stats.parsed, stats.from_cache) == (0, 3)
    # ... and the new mtime is stored, so the next start does not hash it again.
    index = fresh(project)
    rows = dict(
        sqlite3.connect(index.cache_path).execute("SELECT path, mtime_ns FROM files").fetchall()
    )
    assert rows["a.py"] == 1


def test_refresh_writes_through_to_the_cache(project: Path) -> None:
    index = fresh(project)
    index.build(jobs=1)
    write(project, "a.py", "def alpha2(): pass\n")
    index.refresh(["a.py"])
    stats = fresh(project).build(jobs=1)
    assert (stats.parsed, stats.from_cache) == (0, 3)


def test_corrupt_cache_is_rebuilt_with_a_warning(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = fresh(project)
    index.cache_path.parent.mkdir(parents=True, exist_ok=True)
    index.cache_path.write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING, logger="lsp_agent.index.cache"):
        stats = index.build(jobs=1)
    assert stats.files == 3 and stats.parsed == 3
    assert any("rebuilding" in r.getMessage() for r in caplog.records)
    assert fresh(project).build(jobs=1).from_cache == 3  # the rebuilt cache works


def test_damaged_record_is_reparsed(project: Path, caplog: pytest.LogCaptureFixture) -> None:
    index = fresh(project)
    index.build(jobs=1)
    with sqlite3.connect(index.cache_path) as conn:
        conn.execute("UPDATE files SET head = x'00ff00' WHERE path = 'a.py'")
    heads_file = index._cache.heads_path
    damaged = bytearray(heads_file.read_bytes())
    damaged[-40:] = b"\xff" * 40  # the rows are read instead
    heads_file.write_bytes(damaged)
    with caplog.at_level(logging.WARNING):
        again = fresh(project)
        stats = again.build(jobs=1)
    assert (stats.parsed, stats.from_cache) == (1, 2)
    assert [p for p, _ in again.definitions("alpha")] == ["a.py"]
    assert any("damaged heads snapshot" in r.getMessage() for r in caplog.records)
    assert any("damaged cache record" in r.getMessage() for r in caplog.records)
    assert fresh(project).build(jobs=1).from_cache == 3  # and the snapshot was written again


def test_a_warm_start_reads_the_heads_snapshot_only_while_it_is_current(project: Path) -> None:
    fresh(project).build(jobs=1)
    with sqlite3.connect(fresh(project).cache_path) as conn:  # the rows would say otherwise
        conn.execute("UPDATE files SET head = x'00ff00'")
    warm = fresh(project)
    assert (warm.build(jobs=1).from_cache, warm.definitions("beta")[0][0]) == (3, "b.py")
    other = fresh(project)  # another process (a server, say) writes a change
    other.build(jobs=1)
    write(project, "b.py", "def beta2():\n    return 2\n")
    other.refresh(["b.py"])
    again = fresh(project)  # the snapshot is stale now: the rows decide (a.py's is damaged)
    stats = again.build(jobs=1)
    assert (stats.parsed, stats.from_cache) == (2, 1)
    assert [p for p, _ in again.definitions("beta2")] == ["b.py"]
    assert fresh(project).build(jobs=1).from_cache == 3  # rewritten by that full build


def test_the_heads_snapshot_is_one_file_read_back_whole_with_its_table_mapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real code nobody here wrote: the stdlib's email package.
    import shutil
    import sysconfig

    root = tmp_path / "email"
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    shutil.copytree(stdlib / "email", root, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache_module, "HEADS_PIECE", 7)  # the rows in many pieces
    cold = fresh(root)
    cold.build(jobs=1)
    assert cold._cache is not None
    heads_file = cold._cache.heads_path
    assert heads_file.parent == cold.cache_path.parent and heads_file.stat().st_size > 10_000
    heads, names = cold._cache.load()
    assert isinstance(names, memoryview)  # the table is not copied out of the file
    assert len(heads) == len(cold.entries())  # the snapshot, whole
    truncated = heads_file.read_bytes()[:-100]
    heads_file.write_bytes(truncated)
    assert cold._cache.load()[1] is None  # damaged: the rows are read instead
    assert len(cold._cache.load()[0]) == len(cold.entries())
    cold2 = fresh(root)
    cold2.build(jobs=1)  # reads the rows, and writes the snapshot again
    assert heads_file.stat().st_size > len(truncated)
    warm = fresh(root)
    assert warm.build(jobs=1).from_cache == len(cold.entries())  # from the snapshot alone
    assert warm._cache is not None and warm._cache.heads_current
    for path, entry in cold.entries().items():
        again = warm.get(path)
        assert again is not None and again.sha256 == entry.sha256
        assert [d.name for d in again.definitions] == [d.name for d in entry.definitions]
    assert warm.definitions("message_from_string")


def test_records_are_read_from_the_cache_when_asked_not_at_warm_start(project: Path) -> None:
    fresh(project).build(jobs=1)
    warm = fresh(project)
    assert warm.build(jobs=1).from_cache == 3
    entry = warm.get("a.py")
    assert entry is not None and len(entry.definitions) == 1 and len(entry.references) == 1
    with sqlite3.connect(warm.cache_path) as conn:  # the records live in their own table
        conn.execute("UPDATE records SET blob = x'00' WHERE path = 'b.py'")
    assert [d.name for d in entry.definitions] == ["alpha"]  # decoded from the cache on access
    assert [(p, r.name) for p, r in warm.references("beta")] == [("a.py", "beta")]
    assert [(p, d.start_line) for p, d in warm.definitions("beta")] == [("b.py", 0)]


def test_records_missing_from_the_cache_are_extracted_again(project: Path) -> None:
    fresh(project).build(jobs=1)
    warm = fresh(project)
    warm.build(jobs=1)
    with sqlite3.connect(warm.cache_path) as conn:  # another process emptied it meanwhile
        conn.execute("DELETE FROM records")
    assert [(p, d.name) for p, d in warm.definitions("alpha")] == [("a.py", "alpha")]
    write(project, "a.py", "def other():\n    pass\n")  # and the file changed too
    assert [d.name for d in warm.get("a.py").definitions] == []  # type: ignore[union-attr]


def test_schema_or_grammar_change_empties_the_cache(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh(project).build(jobs=1)
    monkeypatch.setattr(cache_module, "SCHEMA_VERSION", "999")
    stats = fresh(project).build(jobs=1)
    assert (stats.parsed, stats.from_cache) == (3, 0)


def test_a_cache_of_an_older_schema_is_rebuilt_saying_so(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = fresh(project).cache_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:  # as schema 3.2 left it: a files table without head
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.executemany("INSERT INTO meta VALUES (?, ?)", [("schema", "3.2"), ("root", "x")])
        conn.execute(
            "CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
            "sha256 TEXT, defs BLOB, refs BLOB)"
        )
        conn.execute("INSERT INTO files VALUES ('a.py', 1, 1, 'x', x'00', x'00')")
    with caplog.at_level(logging.INFO, logger="lsp_agent.index.cache"):
        index = fresh(project)
        stats = index.build(jobs=1)
    assert (stats.files, stats.parsed) == (3, 3)
    assert [p for p, _ in index.definitions("beta")] == ["b.py"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("cache schema 3.2" in m and cache_module.SCHEMA_VERSION in m for m in messages)
    assert not any("unreadable" in m or "no such column" in m for m in messages), messages
    assert fresh(project).build(jobs=1).from_cache == 3  # the rebuilt cache works


def test_unwritable_cache_location_degrades_to_no_cache(
    project: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    index = WorkspaceIndex(project, IndexSettings(), cache_path=blocker / "index.sqlite")
    with caplog.at_level(logging.WARNING):
        stats = index.build(jobs=1)
    assert stats.files == 3
    assert any("index cache" in r.getMessage() for r in caplog.records)


def test_no_cache_neither_reads_nor_writes(project: Path, isolated_cache: Path) -> None:
    index = WorkspaceIndex(project, IndexSettings(), cache_path=None)
    index.build(jobs=1)
    assert not any(isolated_cache.rglob("*.sqlite"))


def _cold_entries(root: Path) -> dict:
    index = WorkspaceIndex(root, IndexSettings(), cache_path=None)
    index.build(jobs=1)
    return index.entries()


def test_warm_start_does_not_read_binary_or_unchanged_files(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project, "logo.png", b"\x89PNG\x00\x00")
    cold = fresh(project).build(jobs=1)
    assert cold.skipped == {"binary": 1}
    reads: list[str] = []
    real = pool.read_source

    def counting(path, max_bytes):  # type: ignore[no-untyped-def]
        reads.append(str(path))
        return real(path, max_bytes)

    monkeypatch.setattr(pool, "read_source", counting)
    warm = fresh(project).build(jobs=1)
    assert warm.skipped == {"binary": 1} and warm.from_cache == 3
    assert reads == []
    write(project, "logo.png", "now text\n")  # no longer binary: read again, and kept
    again = fresh(project).build(jobs=1)
    assert again.skipped == {} and again.files == 4
    assert [Path(p).name for p in reads] == ["logo.png"]


def test_a_cold_build_keeps_its_name_table_packed_as_a_warm_start_does(project: Path) -> None:
    cold = fresh(project)
    cold.build(jobs=1)
    table = cold._table  # written to the cache as bytes, and held as them
    assert table._names is None and table._ids is None
    assert [p for p, _ in cold.definitions("beta")] == ["b.py"]
    write(project, "d.py", "def delta():\n    return beta()\n")
    cold.refresh(["d.py"])  # unpacked again on use: old ids and a new one
    assert [p for p, _ in cold.references("beta")] == ["a.py", "d.py"]
    assert [p for p, _ in cold.definitions("delta")] == ["d.py"]
    assert fresh(project).build(jobs=1).from_cache == 4


def test_a_warm_start_builds_no_name_strings_until_asked(project: Path) -> None:
    fresh(project).build(jobs=1)
    warm = fresh(project)
    stats = warm.build(jobs=1)
    assert (stats.from_cache, stats.definitions) == (3, 3)
    table = warm._table  # adopted from the heads snapshot, still packed
    assert table._names is None and table._ids is None
    assert [p for p, _ in warm.definitions("beta")] == ["b.py"]  # found without the dict
    assert table._ids is None and "beta" in table.names
    write(project, "d.py", "def delta():\n    return alpha()\n")
    warm.refresh(["d.py"])  # a new name gets an id in the same table
    assert [p for p, _ in warm.references("alpha")] == ["d.py"]
    assert [p for p, _ in warm.definitions("delta")] == ["d.py"]


def test_an_edit_after_a_warm_start_finds_its_names_without_the_lookup_dict(
    project: Path,
) -> None:
    # Building the name -> id dict costs ~0.8 s over the kernel's 2.3 M names: a server's
    # first keystroke must not pay it when the file's previous version knows its names.
    fresh(project).build(jobs=1)
    warm = fresh(project)
    warm.build(jobs=1)
    table = warm._table
    warm.update("a.py", "def alpha():\n    return beta() + gamma_new()\n")
    assert table._ids is None  # the old version's ids, plus one scan for gamma_new
    assert [p for p, _ in warm.references("beta")] == ["a.py"]
    assert [p for p, _ in warm.references("gamma_new")] == ["a.py"]
    warm.update("b.py", "def beta():\n    return gamma_new()\n")  # the id a.py's edit added
    assert table._ids is None
    assert [p for p, _ in warm.references("gamma_new")] == ["a.py", "b.py"]
    many = "".join(f"def added{n}():\n    return {n}\n" for n in range(symtab.SCAN_LIMIT + 1))
    warm.update("b.py", many)  # more new names than a scan is worth: the dict is built
    assert table._ids is not None
    assert [p for p, _ in warm.definitions("added3")] == ["b.py"]
    assert len(set(table.names)) == len(table.names)  # one id per name, however it was found


def test_a_save_keeps_the_heads_snapshot_current_for_the_next_start(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A refresh (the watcher after a save) writes rows and makes the heads snapshot stale; a
    # start that finds it stale decodes every row (on the kernel 9.4 s and 659 MB held instead
    # of 2.7 s and 262 MB). The index rewrites the snapshot shortly after its last write.
    fresh(project).build(jobs=1)
    server = fresh(project)
    server.heads_delay = 0.05
    server.build(jobs=1)
    write(project, "b.py", "def beta():\n    return epsilon()\n\n\ndef epsilon():\n    return 5\n")
    server.update("c.go", "package c\n\nfunc Gamma() int { return 4 }\n")  # an open buffer
    server.refresh(["b.py"])
    assert not server._cache.heads_current
    timer = server._heads_timer
    assert timer is not None
    timer.join(5)
    assert server._cache.heads_current
    read_rows: list[int] = []
    real_load = cache_module.IndexCache.load

    def spy(self, *, heads=True):  # type: ignore[no-untyped-def]
        rows, packed = real_load(self, heads=heads)
        read_rows.append(packed is None)
        return rows, packed

    monkeypatch.setattr(cache_module.IndexCache, "load", spy)
    restarted = fresh(project)
    stats = restarted.build(jobs=1)
    assert read_rows == [False]  # the snapshot, not the rows
    assert stats.parsed == 1  # c.go: the snapshot left the buffer's path to be read again
    assert [p for p, _ in restarted.definitions("epsilon")] == ["b.py"]
    assert "return 3" in (restarted.text("c.go") or "")  # the disk's version, not the buffer's
    assert [p for p, _ in restarted.definitions("Gamma")] == ["c.go"]


def test_closing_an_unsaved_buffer_restores_the_disk_entry_without_a_write(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Open, edit, close without saving: the disk's entry comes back as it was, with no parse
    # and no cache row written, so the heads snapshot stays current and no rewrite is started
    # (~1 s holding the interpreter on the kernel, under the next edits).
    fresh(project).build(jobs=1)
    server = fresh(project)
    server.build(jobs=1)
    disk_entry = server.get("b.py")
    assert disk_entry is not None and server._cache.heads_current
    seen: list[set[str]] = []
    server.subscribe(seen.append)
    writes: list[int] = []
    real_write = cache_module.IndexCache.write

    def counting(self, rows, deleted=()):  # type: ignore[no-untyped-def]
        rows = list(rows)
        writes.append(len(rows))
        return real_write(self, rows, deleted)

    monkeypatch.setattr(cache_module.IndexCache, "write", counting)
    server.update("b.py", "def beta():\n    return unsaved()\n")
    assert [p for p, _ in server.references("unsaved")] == ["b.py"]
    server.close_buffer("b.py")
    assert server.get("b.py") is disk_entry
    assert server.references("unsaved") == []
    assert [p for p, _ in server.definitions("beta")] == ["b.py"]
    assert seen == [{"b.py"}, {"b.py"}]  # the edit, then the close
    assert writes == [] and server._cache.heads_current and server._heads_timer is None

    # Saved while open: the disk changed, so the close reads it (and writes its row).
    server.update("b.py", "def beta():\n    return 30\n")
    write(project, "b.py", "def beta():\n    return saved()\n")
    server.close_buffer("b.py")
    assert [p for p, _ in server.references("saved")] == ["b.py"]
    assert writes == [1] and not server._cache.heads_current
    server._heads_timer.cancel()


def test_a_heads_snapshot_overtaken_by_a_save_is_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh(project).build(jobs=1)
    server = fresh(project)
    server.heads_delay = 60.0  # written by hand below
    server.build(jobs=1)
    write(project, "a.py", "def alpha():\n    return 11\n")
    server.refresh(["a.py"])
    real = workspace_module.heads_snapshot

    def overtaken(entries, skips, table):  # type: ignore[no-untyped-def]
        heads = real(entries, skips, table)  # a.py's new row, but not b.py's
        write(project, "b.py", "def beta():\n    return 22\n")
        server.refresh(["b.py"])  # the watcher, while the snapshot is being made
        return heads

    monkeypatch.setattr(workspace_module, "heads_snapshot", overtaken)
    assert server.write_heads() is False  # stamped before b.py's write: refused
    assert not server._cache.heads_current
    monkeypatch.setattr(workspace_module, "heads_snapshot", real)
    assert server.write_heads() is True
    server._heads_timer.cancel()
    restarted = fresh(project)
    assert restarted.build(jobs=1).parsed == 0
    assert "return 22" in (restarted.text("b.py") or "")
    assert [d.signature for d in restarted.get("b.py").definitions] == ["def beta():"]
