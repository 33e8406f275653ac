"""Workspace index: discovery, tree-sitter parsing, symbols, incremental updates, cache.

``from lsp_agent.index import WorkspaceIndex, relative_path, watch`` work; they are resolved
lazily so importing a submodule (in a pool worker, say) does not import the rest.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "WorkspaceIndex": "lsp_agent.index.workspace",
    "relative_path": "lsp_agent.index.workspace",
    "watch": "lsp_agent.index.watcher",
    "Definition": "lsp_agent.index.model",
    "FileEntry": "lsp_agent.index.model",
    "IndexStats": "lsp_agent.index.model",
    "Reference": "lsp_agent.index.model",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
