-- Neovim 0.11+: `vim.lsp.enable('lsp_agent')` with this directory on 'runtimepath'.
-- Override any field with `vim.lsp.config('lsp_agent', { ... })`. The API key comes from the
-- environment ($LSP_AGENT_API_KEY or the provider's own variable), never from this table.
-- Add `require('lsp_agent.commands').register_lsp_commands()` so code actions that need an
-- instruction prompt for it (setup() does this for you).
---@type vim.lsp.Config
return {
  cmd = { 'lsp-agent', 'serve' },
  filetypes = {
    'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact',
    'go', 'rust', 'java', 'c', 'cpp',
  },
  root_markers = { '.lsp-agent.toml', 'pyproject.toml', 'package.json', 'go.mod', 'Cargo.toml', '.git' },
  settings = {
    lspAgent = vim.empty_dict(),
  },
}
