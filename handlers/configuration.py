"""Settings from the client: initializationOptions, then workspace/configuration (section
``lspAgent``) when the client supports it, then workspace/didChangeConfiguration.

Every layer goes through ``config.merge_settings``: a bad value keeps the previous one and the
user sees why in a ``window/showMessage``; the server never fails over settings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_agent.config import load_settings, merge_settings
from lsp_agent.handlers.session import Session

log = logging.getLogger(__name__)

SECTION = "lspAgent"


def _section(data: Any) -> Mapping[str, Any]:
    """Accept both ``{"lspAgent": {...}}`` and the bare section; anything else is empty.
    (A flat ``model: "name"`` needs nothing here: ``config.merge_settings`` reads it.)"""
    if not isinstance(data, Mapping):
        return {}
    inner = data.get(SECTION)
    return dict(inner if isinstance(inner, Mapping) else data)


def warn(session: Session, source: str, warnings: list[str]) -> None:
    if not warnings:
        return
    text = "; ".join(warnings)
    log.warning("settings from %s: %s", source, text)
    session.show(f"lsp-agent settings ({source}): {text}", types.MessageType.Warning)


def apply_initialization_options(session: Session, options: Any, root: Path) -> None:
    """Files (of the primary folder ``root``) + environment + initializationOptions; called
    from ``initialize``. Settings are one per server, shared by every workspace folder."""
    if options is not None and not isinstance(options, Mapping):
        warn(session, "initializationOptions", [f"expected an object, got {options!r}; ignored"])
        options = None
    session.initialization_options = dict(_section(options or {}))
    settings, warnings = load_settings(root, overrides=session.initialization_options)
    session.base_settings = session.settings = settings
    # showMessage before the initialize response is allowed but many clients drop it, so
    # these are kept and shown once the client says it is initialized.
    session.pending_warnings.extend(warnings)


async def pull_configuration(session: Session) -> None:
    """Ask the client for the ``lspAgent`` section and merge it over the current settings."""
    if not session.supports_configuration:
        return
    try:
        result = await session.server.workspace_configuration_async(
            types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])
        )
    except Exception as exc:  # a client bug must not stop the server starting
        log.warning("workspace/configuration failed: %s", exc)
        return
    data = result[0] if result else None
    if data is None:
        return
    merge_from_client(session, data, "workspace/configuration")


def merge_from_client(session: Session, data: Any, source: str) -> None:
    if not isinstance(data, Mapping):
        warn(session, source, [f"expected an object, got {data!r}; ignored"])
        return
    # Over the base, not the current settings: a value the user removed must go away.
    settings, warnings = merge_settings(session.base_settings, _section(data))
    if any(r.index is not None for r in session.roots) and settings.index != session.settings.index:
        warnings.append("index settings (ignore, ...) take effect when the server restarts")
    session.settings = settings
    warn(session, source, warnings)
    log.info("settings updated from %s", source)


def setup(server: LanguageServer, session: Session) -> None:
    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(params: types.DidChangeConfigurationParams) -> None:
        # Pull-model clients send null settings and expect the server to ask again.
        if session.supports_configuration:
            await pull_configuration(session)
        elif params.settings is not None:
            merge_from_client(session, params.settings, "didChangeConfiguration")
