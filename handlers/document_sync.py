"""Incremental document sync: open buffers override disk in the index.

pygls applies the incremental changes to its own documents; this module mirrors each buffer's
version and text into the workspace folder that contains it (a cheap dict update on the loop)
and re-parses it in that folder's index off the loop, coalescing bursts of keystrokes into one
parse per file.
"""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_agent.handlers.roots import HISTORY_VERSIONS
from lsp_agent.handlers.session import OpenDocument, Root, Session

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.05  # typing bursts collapse into one parse

_CLOSED = None  # pending marker: the buffer was closed, go back to disk


class IndexFeeder:
    """Feeds buffer texts to their root's index; at most one parse per file in flight, latest
    wins."""

    def __init__(self, server: LanguageServer, session: Session) -> None:
        self._server = server
        self._session = session
        self._pending: dict[tuple[Root, str], str | None] = {}
        self._workers: dict[tuple[Root, str], asyncio.Task[None]] = {}

    def schedule(self, root: Root, path: str, text: str | None) -> None:
        key = (root, path)
        self._pending[key] = text
        if key not in self._workers:
            self._workers[key] = self._session.spawn(self._drain(key), f"index-update {path}")

    async def _drain(self, key: tuple[Root, str]) -> None:
        loop = asyncio.get_running_loop()
        root, path = key
        try:
            while key in self._pending:
                await asyncio.sleep(DEBOUNCE_S)
                text = self._pending.pop(key)
                index = root.index
                if index is None or root.closed:  # indexing picks open buffers up when it starts
                    continue
                if text is _CLOSED:
                    await loop.run_in_executor(None, index.close_buffer, path)
                else:
                    await loop.run_in_executor(None, index.update, path, text)
        finally:
            self._workers.pop(key, None)

    def track(self, uri: str) -> OpenDocument | None:
        """Mirror the client's buffer into the root that contains it (None: in no folder)."""
        try:
            root, path = self._session.roots.find(uri)
        except ValueError:
            log.debug("not tracking %s: in no workspace folder", uri)
            return None
        document = self._server.workspace.get_text_document(uri)
        version = document.version or 0
        prior = root.documents.get(path)
        history: tuple[tuple[int, str], ...] = ()
        if prior is not None and prior.uri == uri and prior.version != version:
            history = (*prior.history, (prior.version, prior.text))[-HISTORY_VERSIONS:]
        doc = OpenDocument(
            uri=uri, path=path, version=version, text=document.source, history=history
        )
        root.documents[path] = doc
        self.schedule(root, path, doc.text)
        return doc

    def untrack(self, uri: str) -> None:
        for root in self._session.roots:
            for path, doc in list(root.documents.items()):
                if doc.uri == uri:
                    del root.documents[path]
                    self.schedule(root, path, _CLOSED)

    def retrack_all(self) -> None:
        """After the folders changed: move each open buffer to the root that now contains it
        (the innermost); a buffer leaving a live root goes back to disk there."""
        for root in self._session.roots:
            for path, doc in list(root.documents.items()):
                try:
                    owner, _ = self._session.roots.find(doc.uri)
                except ValueError:
                    owner = None
                if owner is not root:
                    del root.documents[path]
                    self.schedule(root, path, _CLOSED)
        tracked = {d.uri for r in self._session.roots for d in r.documents.values()}
        for uri in list(self._server.workspace.text_documents):
            if uri not in tracked:
                self.track(uri)


def setup(server: LanguageServer, session: Session) -> None:
    feeder = session.feeder = IndexFeeder(server, session)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        feeder.track(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        feeder.track(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        feeder.untrack(params.text_document.uri)
