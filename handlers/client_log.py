"""Forwards WARNING and worse log records to the client's log (``window/logMessage``).

stdout is the protocol channel, so the user's only views of the server's troubles are stderr
(which editors often hide) and this. Records may come from executor threads: they are handed
to the loop thread, never written to the transport from another thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from lsprotocol import types

from lsp_agent.handlers.session import Session

_LEVELS = {
    logging.ERROR: types.MessageType.Error,
    logging.WARNING: types.MessageType.Warning,
}


class ClientLogHandler(logging.Handler):
    def __init__(self, session: Session, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.WARNING)
        self._session = session
        self._loop = loop
        self._busy = threading.local()  # sending a message must not log its way back here
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        # pygls logs its own transport failures; echoing those would loop.
        if record.name.startswith("pygls") or getattr(self._busy, "active", False):
            return
        try:
            kind = _LEVELS.get(record.levelno, types.MessageType.Error)
            message = f"lsp-agent: {self.format(record)}"
            self._loop.call_soon_threadsafe(self._send, message, kind)
        except RuntimeError:  # the loop is closed: shutting down
            pass

    def _send(self, message: str, kind: types.MessageType) -> None:
        self._busy.active = True
        try:
            self._session.log_to_client(message, kind)
        except Exception:  # the transport is gone; stderr still has it
            pass
        finally:
            self._busy.active = False


def install(session: Session) -> ClientLogHandler:
    handler = ClientLogHandler(session, asyncio.get_running_loop())
    logging.getLogger("lsp_agent").addHandler(handler)
    return handler


def uninstall(handler: ClientLogHandler) -> None:
    logging.getLogger("lsp_agent").removeHandler(handler)
