"""Read and parse many files, on a process pool when there are enough of them to pay for it.

Workers receive paths, read the files themselves and send back each file's encoded head and
records (bytes: codec.py), so pickling stays small both ways and the main process never builds
a record object: it decodes the head and writes both blobs to the cache. The pool uses
``forkserver`` because the language server already runs threads when it indexes, and ``fork``
after threads can deadlock. Each worker makes the extractor of every language the build needs
once, in its initializer.
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import logging
import multiprocessing
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass

from lsp_agent.index import languages, native
from lsp_agent.index.codec import encode_head, split_raw
from lsp_agent.index.discovery import read_source
from lsp_agent.index.symbols import raw_entry

log = logging.getLogger(__name__)

CHUNK_FILES = 64
# Measured on the 2-core machine (bench/bench_index.py, random stdlib subsets): starting the
# forkserver and two workers (imports, grammars, queries) costs 0.25-0.5 s, and parsing with
# queries runs at 4-6 MB/s per core. Halving the parse time pays for the start from about
# 3 MB: at 2 MB the pool lost (1.21 s against 0.45 s), at 4 MB it won (0.77 s against 0.98 s).
POOL_MIN_BYTES = 3 * 1024 * 1024
POOL_MIN_FILES = 2 * CHUNK_FILES
# Chunks given to the pool at a time, per worker: enough that no worker waits for the next,
# few enough that finished chunks do not pile up here while this process writes the cache.
# (Every chunk submitted at once left that backlog unbounded; a kernel build's peak was
# elsewhere, at its end: cache.write_heads.)
IN_FLIGHT_PER_WORKER = 3


@dataclass(frozen=True, slots=True)
class Job:
    path: str  # relative to the root
    size: int
    mtime_ns: int
    known_sha: str | None = None  # the cached hash: same content -> no parse needed


# A parsed file: (size, sha256, encoded head, encoded records)
Parsed = tuple[int, str, bytes, bytes]
# (path, result): a parsed file; a skip reason string; or None = content unchanged
Result = tuple[str, Parsed | str | None]


_pause_lock = threading.Lock()
_pauses = 0  # gc_paused blocks running now, on any thread
_enabled_before = False  # whether the collector ran before the first of them


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while hundreds of thousands of acyclic objects (query matches,
    records, a prefix's blocks) are created and dropped: each full collection would walk all
    live objects again. Measured on the stdlib: the query step took half as long, a warm start
    a third less. Counted across threads (the server builds a snapshot while the index takes
    an edit): the collector runs again when the last pause ends, not the first."""
    global _pauses, _enabled_before
    with _pause_lock:
        if _pauses == 0:
            _enabled_before = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _enabled_before:
                gc.enable()


def return_freed_memory() -> None:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere a
    no-op). A cold build frees most of what it allocated (pool results, names as strings,
    record blobs written to the cache) among the entries it keeps; glibc holds on to those
    pages otherwise: ~90 MB of a kernel build's 713 MB."""
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def index_chunk(root: str, jobs: Sequence[Job], max_file_bytes: int) -> list[Result]:
    """Runs in a worker (or inline): read, hash, parse, encode."""
    with gc_paused():
        return _index_chunk(root, jobs, max_file_bytes)


def _index_chunk(root: str, jobs: Sequence[Job], max_file_bytes: int) -> list[Result]:
    results: list[Result] = []
    for job in jobs:
        data = read_source(os.path.join(root, job.path), max_file_bytes)
        if isinstance(data, str):
            results.append((job.path, data))
            continue
        sha = hashlib.sha256(data).hexdigest()
        if sha == job.known_sha:
            results.append((job.path, None))
            continue
        raw = raw_entry(
            job.path, languages.language_for_path(job.path), data, mtime_ns=job.mtime_ns, sha256=sha
        )
        head, records = split_raw(raw)
        results.append((job.path, (len(data), sha, encode_head(head), records)))
    return results


def _init_worker(names: tuple[str, ...]) -> None:
    # Only the grammars this build needs: compiling all nine queries costs ~140 ms per worker.
    # Files from disk go to the C extractor, which compiles its own patterns (or, outside the
    # matcher's subset, its own copy of the query).
    if native.available():
        for name in names:
            native.extractor(name)
    else:
        languages.warm_up(names)


def effective_jobs(requested: int | None) -> int:
    if requested is None or requested <= 0:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    return requested


def _main_is_importable() -> bool:
    # forkserver/spawn workers re-import the parent's __main__ by path; a program read from
    # stdin or an interactive session has no file to re-import, and the workers would die.
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    return path is None or os.path.isfile(path)


def should_use_pool(jobs: Sequence[Job], workers: int) -> bool:
    if workers < 2 or len(jobs) < POOL_MIN_FILES or not _main_is_importable():
        return False
    return sum(job.size for job in jobs) >= POOL_MIN_BYTES


def run_jobs(
    root: str,
    jobs: Sequence[Job],
    max_file_bytes: int,
    *,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Result]:
    """Yield one result per job (in completion order when pooled). ``progress(n)`` after each
    chunk with the number of files it held."""
    chunks = [jobs[i : i + CHUNK_FILES] for i in range(0, len(jobs), CHUNK_FILES)]
    pending = dict(enumerate(chunks))
    if workers >= 2 and len(chunks) >= 2:
        try:
            for index, results in _pooled(root, pending, max_file_bytes, workers):
                yield from results
                chunk = pending.pop(index)
                if progress:
                    progress(len(chunk))
        except (OSError, BrokenProcessPool) as exc:
            # A pool that cannot start or loses a worker (killed, out of memory) must not
            # lose the index: the chunks not yet done are indexed here instead.
            log.warning("index pool failed (%s); continuing in this process", exc)
    for index in sorted(pending):
        chunk = pending[index]
        yield from index_chunk(root, chunk, max_file_bytes)
        if progress:
            progress(len(chunk))


def _pooled(
    root: str, chunks: dict[int, Sequence[Job]], max_file_bytes: int, workers: int
) -> Iterator[tuple[int, list[Result]]]:
    context = multiprocessing.get_context("forkserver")
    # Workers fork from the server with this module (tree-sitter, the grammars' packages, the
    # codec) already imported: ~0.1 s per worker otherwise, paid while the main process works.
    context.set_forkserver_preload(["__main__", __name__])
    needed = {languages.language_for_path(job.path) for chunk in chunks.values() for job in chunk}
    names = tuple(sorted(name for name in needed if name is not None))
    workers = min(workers, len(chunks))
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(names,),
    ) as executor:
        waiting = deque(chunks)  # chunk indices not yet given to the pool, first to last
        running: dict[Future[list[Result]], int] = {}
        limit = workers * IN_FLIGHT_PER_WORKER

        def feed() -> None:
            while waiting and len(running) < limit:
                index = waiting.popleft()
                running[executor.submit(index_chunk, root, chunks[index], max_file_bytes)] = index

        feed()
        yield from _while_the_pool_starts(root, chunks, waiting, running, max_file_bytes)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            while done:
                # Popped, not looked up: a future keeps its result (the chunk's records) for
                # as long as it is referenced.
                future = done.pop()
                index = running.pop(future)
                feed()  # the workers go on while this process takes the results in
                results = future.result()
                del future
                yield index, results
                del results


def _while_the_pool_starts(
    root: str,
    chunks: dict[int, Sequence[Job]],
    waiting: deque[int],
    running: dict[Future[list[Result]], int],
    max_file_bytes: int,
) -> Iterator[tuple[int, list[Result]]]:
    """Index chunks here, from the last one waiting, until a worker returns its first:
    starting the workers (a fork each, then grammars and patterns) takes ~0.5 s on two
    cores, in which this process would only wait."""
    started = threading.Event()
    for future in running:
        future.add_done_callback(lambda _: started.set())
    while waiting and not started.is_set():
        index = waiting.pop()
        yield index, index_chunk(root, chunks[index], max_file_bytes)
