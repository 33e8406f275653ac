"""A second event loop, in its own thread, for the agent worker and the file watcher.

The worker does real CPU work between awaits (building prompts, counting tokens, parsing and
validating edits, writing transcripts): measured 20–130 ms per step with 8 tasks. On the LSP
loop that is 130 ms a code action waits. On its own thread it only competes for the GIL, which
the LSP thread gets back within the interpreter's switch interval (``serve`` sets 1 ms; Python's
default is 5 ms).

``run(coro)`` returns an awaitable for the LSP loop; cancelling that awaitable cancels the
coroutine on the worker loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class WorkerLoop:
    def __init__(self, name: str = "lsp-agent-worker") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        # Stopped: give cancelled coroutines their chance to run their finally blocks.
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Schedule ``coro`` on the worker loop; await the result from the calling loop."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def call_back(self, loop: asyncio.AbstractEventLoop, func: Any) -> Any:
        """Wrap a callback that the worker calls so that it runs on ``loop`` instead."""

        def relay(*args: Any) -> None:
            try:
                loop.call_soon_threadsafe(func, *args)
            except RuntimeError:  # that loop is closed: the server is exiting
                log.debug("dropped a callback: its loop is closed")

        return relay

    def close(self, timeout: float = 5.0) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
