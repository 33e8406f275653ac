"""The batch engine behind `lsp-agent refactor` and `lsp-agent fix`."""
