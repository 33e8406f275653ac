"""Subcommands of the lsp-agent CLI, one module each."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lsp_agent.config import Settings
    from lsp_agent.workspace_root import WorkspaceRoot


def root_and_settings(
    path: Path | None, *, no_ignore: bool
) -> tuple[WorkspaceRoot, Settings, list[str]]:
    """The root a PATH argument names and its strict settings (``--no-ignore`` applied), for
    the commands that take one PATH (`index`, `snapshot`). Raises RootError or ConfigError."""
    from lsp_agent.config import load_settings
    from lsp_agent.workspace_root import choose_root

    chosen = choose_root([], Path.cwd(), path, explicit_flag="PATH")
    overrides: dict[str, Any] | None = {"index": {"use_gitignore": False}} if no_ignore else None
    settings, warnings = load_settings(chosen.path, overrides, strict=True)
    return chosen, settings, warnings
