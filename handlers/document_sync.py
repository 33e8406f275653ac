"""Incremental document sync: open buffers override disk in the index.

pygls applies the incremental changes to its own documents; this module mirrors each buffer's
version and text into the session (a cheap dict update on the loop) and re-parses it in the
index off the loop, coalescing bursts of keystrokes into one parse per file.
"""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_agent.handlers.session import OpenDocument, Session
from lsp_agent.handlers.uris import uri_to_path

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.05  # typing bursts collapse into one parse

_CLOSED = None  # pending marker: the buffer was closed, go back to disk


class IndexFeeder:
    """Feeds buffer texts to the index; at most one parse per path in flight, latest wins."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._pending: dict[str, str | None] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def schedule(self, path: str, text: str | None) -> None:
        self._pending[path] = text
        if path not in self._workers:
            self._workers[path] = self._session.spawn(self._drain(path), f"index-update {path}")

    async def _drain(self, path: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            while path in self._pending:
                await asyncio.sleep(DEBOUNCE_S)
                text = self._pending.pop(path)
                index = self._session.index
                if index is None:  # indexing will pick the open buffers up when it starts
                    continue
                if text is _CLOSED:
                    await loop.run_in_executor(None, index.close_buffer, path)
                else:
                    await loop.run_in_executor(None, index.update, path, text)
        finally:
            self._workers.pop(path, None)


def setup(server: LanguageServer, session: Session) -> None:
    feeder = IndexFeeder(session)

    def track(uri: str) -> OpenDocument | None:
        try:
            path = uri_to_path(session.root, uri)
        except ValueError:
            log.debug("not tracking %s: outside the workspace", uri)
            return None
        document = server.workspace.get_text_document(uri)
        doc = OpenDocument(uri=uri, path=path, version=document.version or 0, text=document.source)
        session.documents[path] = doc
        feeder.schedule(path, doc.text)
        return doc

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        track(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        track(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        try:
            path = uri_to_path(session.root, params.text_document.uri)
        except ValueError:
            return
        if session.documents.pop(path, None) is not None:
            feeder.schedule(path, _CLOSED)
