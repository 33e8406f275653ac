-- Neovim 0.11+: `vim.lsp.enable('lsp_agent')` with this directory on 'runtimepath'.
-- Override any field with `vim.lsp.config('lsp_agent', { ... })`. The API key comes from the
-- environment ($LSP_AGENT_API_KEY or the provider's own variable), never from this table.
-- plugin/lsp_agent.lua (loaded at startup from the same directory) hooks LspAttach: code
-- actions that need an instruction prompt for it, and they see every server's diagnostics.
---@type vim.lsp.Config
return {
  -- This checkout's .venv/bin/lsp-agent when it exists, else `lsp-agent` on $PATH.
  cmd = require('lsp_agent').default_cmd(),
  filetypes = {
    'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact',
    'go', 'rust', 'java', 'c', 'cpp',
  },
  root_markers = { '.lsp-agent.toml', 'pyproject.toml', 'package.json', 'go.mod', 'Cargo.toml', '.git' },
  settings = {
    lspAgent = vim.empty_dict(),
  },
}
