"""Workspace index: discovery, tree-sitter parsing, symbols, incremental updates, cache."""
