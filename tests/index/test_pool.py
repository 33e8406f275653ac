"""The process pool gives exactly the single-process result."""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import pytest

from lsp_agent.config import IndexSettings
from lsp_agent.index import pool
from lsp_agent.index.workspace import WorkspaceIndex
from tests.index.test_discovery import write

LANGS = Path(__file__).resolve().parent.parent / "fixtures" / "index" / "langs"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    # Enough files for several chunks, in every language, plus skips the workers must report.
    for n in range(3):
        shutil.copytree(LANGS, tmp_path / f"copy{n}")
    for n in range(120):
        write(tmp_path, f"many/m{n:03}.py", f"def f{n}():\n    return f{n + 1}()\n")
    write(tmp_path, "many/blob.dat", b"\x00" * 10)
    write(tmp_path, "many/bad.py", b"s = '\xff\xfe'\n")
    return tmp_path


def test_pool_equals_single_process(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    single = WorkspaceIndex(corpus, IndexSettings(), cache_path=None)
    single_stats = single.build(jobs=1)

    monkeypatch.setattr(pool, "POOL_MIN_BYTES", 0)
    monkeypatch.setattr(pool, "POOL_MIN_FILES", 0)
    used: list[int] = []
    real_run_jobs = pool.run_jobs

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        used.append(kwargs["workers"])
        return real_run_jobs(*args, **kwargs)

    monkeypatch.setattr("lsp_agent.index.loader.run_jobs", spy)
    pooled = WorkspaceIndex(corpus, IndexSettings(), cache_path=None)
    pooled_stats = pooled.build(jobs=2)

    assert used == [2]
    assert pooled.entries() == single.entries()
    assert pooled_stats.skipped == single_stats.skipped == {"binary": 1}
    assert pooled_stats.decode_errors == single_stats.decode_errors == 1
    assert pooled.definitions("f7") == single.definitions("f7") != []
    assert pooled_stats.files == 3 * len(list(LANGS.iterdir())) + 121


def test_pool_threshold() -> None:
    small = [pool.Job(f"f{i}.py", 1000, 0) for i in range(500)]
    big = [pool.Job(f"f{i}.py", 50_000, 0) for i in range(500)]
    assert not pool.should_use_pool(small, 2)  # 0.5 MB: not worth starting processes
    assert pool.should_use_pool(big, 2)
    assert not pool.should_use_pool(big, 1)
    assert pool.effective_jobs(3) == 3 and pool.effective_jobs(0) >= 1


def test_a_pool_that_dies_falls_back_to_this_process(
    corpus: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = [
        pool.Job(p.relative_to(corpus).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(corpus.rglob("*.py"))
    ]
    expected = sorted(pool.run_jobs(str(corpus), jobs, 1 << 20, workers=1))

    def broken(root, chunks, max_file_bytes, workers):  # type: ignore[no-untyped-def]
        first = min(chunks)
        yield first, pool.index_chunk(root, chunks[first], max_file_bytes)
        raise pool.BrokenProcessPool("a worker was killed")

    monkeypatch.setattr(pool, "_pooled", broken)
    done: list[int] = []
    got = sorted(pool.run_jobs(str(corpus), jobs, 1 << 20, workers=2, progress=done.append))
    assert got == expected
    assert sum(done) == len(jobs)
    assert any("continuing in this process" in r.getMessage() for r in caplog.records)


def test_a_consumed_chunk_is_not_held_until_the_pool_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks indexed here while the pool starts would be traced too: this is about the pool's.
    monkeypatch.setattr(pool, "_while_the_pool_starts", lambda *args: iter(()))
    # A cold build of the kernel brings ~450 MB of encoded records through the pool; the main
    # process writes each chunk to the cache and must then let go of it, not keep every
    # chunk's results alive until the last one arrives.
    body = "".join(f"def f{n}(a, b):\n    return g{n}(a) + h{n}(b)\n" for n in range(150))
    for n in range(24 * pool.CHUNK_FILES):
        write(tmp_path, f"src/m{n:04}.py", body)
    jobs = [
        pool.Job(p.relative_to(tmp_path).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(tmp_path.rglob("*.py"))
    ]
    tracemalloc.start()
    try:
        received = 0
        for _path, result in pool.run_jobs(str(tmp_path), jobs, 1 << 20, workers=2):
            assert isinstance(result, tuple)
            received += len(result[3])
            del result
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received > 8_000_000  # the records that passed through
    assert peak < received / 3, (peak, received)


def test_a_worker_warms_the_extractor_it_will_use() -> None:
    # Files from disk go to the C extractor: compiling py-tree-sitter's queries as well would
    # cost each worker the same again for nothing.
    from lsp_agent.index import languages, native

    languages.load_query.cache_clear()
    native.extractor.cache_clear()
    try:
        pool._init_worker(("go", "rust"))
        assert native.extractor.cache_info().currsize == 2
        assert languages.load_query.cache_info().currsize == 0
    finally:
        native.extractor.cache_clear()


def test_this_process_indexes_chunks_until_a_worker_returns(corpus: Path) -> None:
    # Starting the workers takes ~0.5 s; the main process takes the chunks not yet given to
    # the pool, from the end, and stops at the first worker's result.
    from collections import deque
    from concurrent.futures import Future

    jobs = [
        pool.Job(p.relative_to(corpus).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(corpus.rglob("*.py"))
    ]
    chunks = {i: jobs[i * 8 : i * 8 + 8] for i in range(6)}
    running: dict[Future, int] = {Future(): 0, Future(): 1}  # given to the pool
    waiting = deque([2, 3, 4, 5])
    taken = list(pool._while_the_pool_starts(str(corpus), chunks, waiting, running, 1 << 20))
    assert [index for index, _results in taken] == [5, 4, 3, 2]
    assert taken[0][1] == pool.index_chunk(str(corpus), chunks[5], 1 << 20)
    assert not waiting and sorted(running.values()) == [0, 1]  # the pool still owes those

    waiting = deque([2, 3, 4, 5])
    stolen = pool._while_the_pool_starts(str(corpus), chunks, waiting, running, 1 << 20)
    assert next(stolen)[0] == 5
    next(iter(running)).set_result([])  # a worker's first result: the pool is up
    assert list(stolen) == []
    assert list(waiting) == [2, 3, 4]  # left for the pool


def test_the_pool_is_given_a_few_chunks_at_a_time(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Finished chunks wait in this process until it takes them in: with every chunk given to
    # the pool at once, nothing bounded how many waited.
    from concurrent.futures import ProcessPoolExecutor

    submitted: list[int] = []
    most = 0
    real_submit = ProcessPoolExecutor.submit

    def submit(self: ProcessPoolExecutor, fn: object, *args: object) -> object:
        submitted.append(1)
        return real_submit(self, fn, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ProcessPoolExecutor, "submit", submit)
    monkeypatch.setattr(pool, "_while_the_pool_starts", lambda *args: iter(()))
    jobs = [
        pool.Job(p.relative_to(corpus).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(corpus.rglob("*.py"))
    ]
    chunks = {i: jobs[i : i + 1] for i in range(min(len(jobs), 20))}
    seen = []
    for index, results in pool._pooled(str(corpus), chunks, 1 << 20, 2):
        most = max(most, len(submitted) - len(seen))  # given to the pool, not taken in before
        seen.append(index)
        assert results == pool.index_chunk(str(corpus), chunks[index], 1 << 20)
    assert sorted(seen) == sorted(chunks) and len(submitted) == len(chunks)
    assert most <= 2 * pool.IN_FLIGHT_PER_WORKER + 1  # and the one being taken in


def test_gc_pauses_overlapping_on_two_threads_end_with_the_last() -> None:
    import gc
    import threading

    from lsp_agent.index.pool import gc_paused

    assert gc.isenabled()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def second() -> None:
        first_in.wait()
        with gc_paused():
            second_in.set()
            first_out.wait()
            seen.append(gc.isenabled())  # the first pause ended: this one still holds
        seen.append(gc.isenabled())

    thread = threading.Thread(target=second)
    thread.start()
    with gc_paused():
        first_in.set()
        second_in.wait()
    first_out.set()
    thread.join()
    assert seen == [False, True]
    assert gc.isenabled()


def test_a_gc_pause_leaves_a_disabled_collector_disabled() -> None:
    import gc

    from lsp_agent.index.pool import gc_paused

    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
