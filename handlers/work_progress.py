"""Server-initiated work-done progress that degrades to nothing when the client lacks it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future

from lsprotocol import types

from lsp_agent.handlers.session import Session

log = logging.getLogger(__name__)

SERVER_LABEL = "lsp-agent"


def progress_title(subject: str) -> str:
    """The title of a progress bar: the server's name once, then what the work is about.

    Editors show the title as sent (VS Code's status bar, Neovim's ``vim.lsp.status()``), so
    it names the server; a subject that already starts with the name is not prefixed again.
    """
    if subject == SERVER_LABEL or subject.startswith(f"{SERVER_LABEL}:"):
        return subject
    return f"{SERVER_LABEL}: {subject}"


class WorkProgress:
    """One progress bar: ``begin`` → ``report``* → ``end``, titled ``progress_title(subject)``.

    ``on_cancel`` runs when the user presses cancel on the bar (window/workDoneProgress/cancel).
    Every method is safe to call when the client has no progress support or refused the
    token: the calls become no-ops, so callers never branch on capabilities.
    """

    def __init__(
        self,
        session: Session,
        token: str,
        subject: str,
        *,
        cancellable: bool = False,
        on_cancel: Callable[[], None] | None = None,
    ) -> None:
        self._session = session
        self.token = token
        self._title = progress_title(subject)
        self._cancellable = cancellable
        self._on_cancel = on_cancel
        self.active = False
        self._last: tuple[str, int | None] | None = None
        self._percentage = 0  # the last one sent: begin sends 0

    async def begin(self, message: str = "") -> None:
        if not self._session.supports_progress:
            return
        progress = self._session.server.work_done_progress
        try:
            await progress.create_async(self.token)
        except Exception as exc:  # refused or a duplicate token: run without a bar
            log.warning("window/workDoneProgress/create %s failed: %s", self.token, exc)
            return
        self.active = True
        future = progress.tokens.get(self.token)
        if future is not None and self._on_cancel is not None:
            future.add_done_callback(self._cancelled)
        progress.begin(
            self.token,
            types.WorkDoneProgressBegin(
                title=self._title,
                cancellable=self._cancellable,
                message=message or None,
                percentage=0,
            ),
        )

    def _cancelled(self, future: Future[object]) -> None:
        # The token's future is only ever cancelled by the client's cancel notification.
        if future.cancelled() and self.active and self._on_cancel is not None:
            log.info("progress %s cancelled by the client", self.token)
            self._on_cancel()

    def report(self, message: str, percentage: int | None = None) -> None:
        # A bar that began with a percentage keeps one: vscode-languageclient drops the
        # message of a report without it (a goal run's steps never showed in VS Code).
        percentage = self._percentage if percentage is None else percentage
        if not self.active or self._last == (message, percentage):
            return
        self._last = (message, percentage)
        self._percentage = percentage
        self._session.server.work_done_progress.report(
            self.token,
            types.WorkDoneProgressReport(
                message=message, percentage=percentage, cancellable=self._cancellable
            ),
        )

    def end(self, message: str = "") -> None:
        if not self.active:
            return
        self.active = False
        progress = self._session.server.work_done_progress
        progress.end(self.token, types.WorkDoneProgressEnd(message=message or None))
        # pygls never forgets tokens; drop ours so a long session does not accumulate them.
        progress.tokens.pop(self.token, None)
