"""lsp-agent: a language server that turns code actions into multi-agent fix and refactor tasks."""

__version__ = "0.1.0"
