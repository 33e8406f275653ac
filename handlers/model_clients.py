"""The model client tasks share: one for the current settings. A settings change makes a new
one for the next task; the replaced client is closed (its HTTP connection pool) once the last
task still using it has finished, instead of being dropped with its sockets open."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from lsp_agent.config import Settings

log = logging.getLogger(__name__)


class ModelClients:
    def __init__(self, make: Callable[[Settings], Any] | None = None) -> None:
        self._make = make or _from_settings
        self._settings: Settings | None = None
        self._current: Any = None
        self._users: dict[int, int] = {}  # id(client) -> tasks using it
        self._retired: dict[int, Any] = {}  # replaced clients still in use

    def acquire(self, settings: Settings) -> Any:
        """The client for ``settings`` (ConfigError when no model is configured), counted as
        used until ``release``."""
        if self._current is None or settings is not self._settings:
            client = self._make(settings)  # first: a ConfigError leaves the current one be
            if self._current is not None:
                self._retired[id(self._current)] = self._current
            self._settings, self._current = settings, client
        self._users[id(self._current)] = self._users.get(id(self._current), 0) + 1
        return self._current

    def release(self, client: Any) -> Any | None:
        """One task finished with ``client``; returns it when it should now be closed (a
        replaced client nobody uses any more)."""
        key = id(client)
        self._users[key] = max(0, self._users.get(key, 0) - 1)
        if self._users[key] == 0 and key in self._retired:
            del self._users[key]
            return self._retired.pop(key)
        return None

    def drain(self) -> list[Any]:
        """Every client, for shutdown."""
        clients = [*self._retired.values(), *([self._current] if self._current else [])]
        self._retired.clear()
        self._users.clear()
        self._settings, self._current = None, None
        return clients


def _from_settings(settings: Settings) -> Any:
    from lsp_agent.agents.client import OpenAIChatClient

    return OpenAIChatClient.from_settings(settings)
