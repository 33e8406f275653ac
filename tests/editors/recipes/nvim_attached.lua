-- After the user's init.lua (a README recipe) ran and the file opened: did lsp-agent attach,
-- started with which command, and does it answer a code action request? Writes JSON to
-- $LSP_AGENT_E2E_REPORT.
local report = {}
local function finish()
  local f = assert(io.open(os.getenv('LSP_AGENT_E2E_REPORT'), 'w'))
  f:write(vim.fn.json_encode(report))
  f:close()
  vim.cmd('qall!')
end
local ok, err = pcall(function()
  report.command_defined = vim.fn.exists(':LspAgent') == 2
  local bufnr = vim.api.nvim_get_current_buf()
  local client
  vim.wait(30000, function()
    client = require('lsp_agent').client(bufnr)
    return client ~= nil and client.initialized ~= false and next(client.server_capabilities or {}) ~= nil
  end, 50)
  if not client then
    report.error = 'no lsp_agent client'
    return
  end
  report.cmd = client.config.cmd
  report.attached = vim.lsp.buf_is_attached(bufnr, client.id)
  local compat = require('lsp_agent.compat')
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = { start = { line = 0, character = 0 }, ['end'] = { line = 0, character = 0 } },
    context = { diagnostics = {} },
  }
  local response = compat.request_sync(client, 'textDocument/codeAction', params, 20000, bufnr)
  report.actions = vim.tbl_map(function(a)
    return a.title
  end, (response and response.result) or {})
end)
if not ok then
  report.error = tostring(err)
end
finish()
