"""The LSP feature layer on pygls; installed as lsp_agent.handlers."""
