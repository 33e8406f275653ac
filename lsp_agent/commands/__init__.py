"""Subcommands of the lsp-agent CLI, one module each."""
