-- lsp_agent.diagnostics.widen_params on diagnostics no language server sent (a linter plugin's
-- vim.diagnostic.set, byte columns) next to one that came over LSP. Writes a JSON report to
-- $LSP_AGENT_E2E_REPORT; the test checks it.
local diagnostics = require('lsp_agent.diagnostics')
local bufnr = vim.api.nvim_get_current_buf()
vim.api.nvim_buf_set_name(bufnr, vim.fn.getcwd() .. '/m.py')
vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, { 'é = "日本" + x', 'y = 1', 'z = 2' })
local lint = vim.api.nvim_create_namespace('a_linter')
vim.diagnostic.set(lint, bufnr, {
  -- byte columns: 'x' is byte 16 (é = 2 bytes, 日本 = 6), UTF-16 column 11
  { lnum = 0, col = 16, end_lnum = 0, end_col = 17, severity = 1, message = 'undefined name x', source = 'pyflakes', code = 'F821' },
  { lnum = 2, col = 0, end_col = 1, severity = 2, message = 'on line 3', source = 'pyflakes' },
})
local over_lsp = {
  range = { start = { line = 1, character = 0 }, ['end'] = { line = 1, character = 1 } },
  message = 'from a server', source = 'srv', data = { fix = 1 },
}
local other = vim.api.nvim_create_namespace('another_server')
vim.diagnostic.set(other, bufnr, {
  { lnum = 1, col = 0, end_col = 1, severity = 3, message = 'from a server', source = 'srv', user_data = { lsp = over_lsp } },
})
local uri = vim.uri_from_bufnr(bufnr)
local function widen(range, given)
  local params = { textDocument = { uri = uri }, range = range, context = { diagnostics = given, only = { 'quickfix' } } }
  local out = diagnostics.widen_params(params)
  return { out = out, given_untouched = #params.context.diagnostics == #given }
end
local report = {
  -- cursor on line 1: only the linter's diagnostic on that line
  cursor = widen({ start = { line = 0, character = 3 }, ['end'] = { line = 0, character = 3 } }, {}),
  -- linewise selection of lines 1-2 (ends at column 0 of line 3): not line 3's
  linewise = widen({ start = { line = 0, character = 0 }, ['end'] = { line = 2, character = 0 } }, {}),
  -- the server's own diagnostic already in the context is not added twice
  dedupe = widen({ start = { line = 1, character = 0 }, ['end'] = { line = 1, character = 0 } }, { over_lsp }),
}
local f = assert(io.open(os.getenv('LSP_AGENT_E2E_REPORT'), 'w'))
f:write(vim.fn.json_encode(report))
f:close()
vim.cmd('qall!')
