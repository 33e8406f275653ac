-- Every diagnostic in lsp-agent's codeAction context, whichever server or linter produced it.
--
-- Neovim 0.11+ fills `context.diagnostics` of a textDocument/codeAction request with the
-- requesting client's own diagnostics only, so lsp-agent (which publishes none) would never
-- see ruff's or pyright's and could never offer "Fix with lsp-agent" for them. 0.7–0.10 send
-- every diagnostic on the line. `widen(client)` restores that for the lsp-agent client alone:
-- its codeAction requests get every diagnostic (any namespace) on the lines of the request's
-- range, the other servers keep receiving only their own.
local compat = require('lsp_agent.compat')

local M = {}

--- A vim.diagnostic entry as an LSP Diagnostic: the server's original when it came over LSP,
--- else built from the entry (linter plugins such as nvim-lint set byte columns).
function M.to_lsp(bufnr, d)
  local original = d.user_data and d.user_data.lsp
  if type(original) == 'table' and original.range then
    return original
  end
  local end_lnum = d.end_lnum or d.lnum
  return {
    range = {
      start = { line = d.lnum, character = compat.utf16_col(bufnr, d.lnum, d.col or 0) },
      ['end'] = { line = end_lnum, character = compat.utf16_col(bufnr, end_lnum, d.end_col or d.col or 0) },
    },
    severity = d.severity,
    message = d.message,
    source = d.source,
    code = d.code,
  }
end

--- LSP diagnostics of `bufnr`, from every namespace, on the lines `range` covers.
function M.in_range(bufnr, range)
  local first = range.start.line
  local last = range['end'].line
  if last > first and range['end'].character == 0 then
    last = last - 1 -- a linewise selection ends at column 0 of the next line
  end
  local found = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    if d.lnum <= last and (d.end_lnum or d.lnum) >= first then
      table.insert(found, M.to_lsp(bufnr, d))
    end
  end
  return found
end

local function key(d)
  local r = d.range
  return table.concat({
    r.start.line, r.start.character, r['end'].line, r['end'].character,
    tostring(d.source), tostring(d.code), tostring(d.message),
  }, '\0')
end

--- `params` of a codeAction request with every diagnostic in its range added to the context
--- (the ones already there first, no duplicates). Returns a new table; `params` is unchanged.
function M.widen_params(params)
  local uri = params.textDocument and params.textDocument.uri
  if type(uri) ~= 'string' or type(params.range) ~= 'table' then
    return params
  end
  local bufnr = vim.uri_to_bufnr(uri)
  local context = vim.tbl_extend('force', {}, params.context or {})
  local merged, seen = {}, {}
  local function add(d)
    local k = key(d)
    if not seen[k] then
      seen[k] = true
      table.insert(merged, d)
    end
  end
  for _, d in ipairs(context.diagnostics or {}) do
    add(d)
  end
  for _, d in ipairs(M.in_range(bufnr, params.range)) do
    add(d)
  end
  context.diagnostics = merged
  local widened = vim.tbl_extend('force', {}, params)
  widened.context = context
  return widened
end

--- Make `client`'s codeAction requests carry every diagnostic (Neovim 0.11+; a no-op before,
--- where Neovim already does, and on a client already widened).
function M.widen(client)
  if not compat.has('nvim-0.11') or client == nil or client._lsp_agent_widened then
    return
  end
  client._lsp_agent_widened = true
  -- An instance field shadows the Client class's method, for this client only; every caller
  -- (vim.lsp.buf.code_action, lightbulb plugins, request_sync) goes through client:request.
  local request = client.request
  client.request = function(self, method, params, handler, bufnr)
    if method == 'textDocument/codeAction' and type(params) == 'table' then
      params = M.widen_params(params)
    end
    return request(self, method, params, handler, bufnr)
  end
end

--- An LspAttach hook (Neovim 0.8+) for clients named `name` (default 'lsp_agent'): register
--- the instruction prompt and widen the client. Idempotent: one autocmd group, replaced.
function M.on_attach_hook(name)
  name = name or 'lsp_agent'
  vim.api.nvim_create_autocmd('LspAttach', {
    group = vim.api.nvim_create_augroup('lsp_agent_attach', { clear = true }),
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data and args.data.client_id)
      if client and client.name == name then
        require('lsp_agent.commands').register_lsp_commands()
        M.widen(client)
      end
    end,
  })
end

return M
