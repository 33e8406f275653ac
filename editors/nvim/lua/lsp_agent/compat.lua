-- The few places where Neovim's LSP API changed between 0.7 and 0.12, in one module.
local M = {}

function M.has(feature)
  return vim.fn.has(feature) == 1
end

--- Nearest ancestor directory of `fname` holding one of `markers`; the file's directory if none.
--- (vim.fs.root is 0.10+, vim.fs.find 0.8+: a plain loop works everywhere.)
function M.find_root(fname, markers)
  local dir = vim.fn.fnamemodify(fname, ':p:h')
  local start = dir
  while true do
    for _, marker in ipairs(markers or {}) do
      if vim.loop.fs_stat(dir .. '/' .. marker) then
        return dir
      end
    end
    local parent = vim.fn.fnamemodify(dir, ':h')
    if parent == dir then
      return start
    end
    dir = parent
  end
end

--- The client called `name` attached to `bufnr`, else any client called `name`.
function M.get_client(name, bufnr)
  local list
  if vim.lsp.get_clients then
    list = vim.lsp.get_clients({ name = name, bufnr = bufnr })
    if #list == 0 then
      list = vim.lsp.get_clients({ name = name })
    end
  else
    list = {}
    for _, client in pairs(vim.lsp.buf_get_clients(bufnr)) do
      if client.name == name then
        table.insert(list, client)
      end
    end
    if #list == 0 then
      for _, client in pairs(vim.lsp.get_active_clients()) do
        if client.name == name then
          table.insert(list, client)
        end
      end
    end
  end
  return list[1]
end

--- client:request on 0.11+ (method syntax), client.request before.
function M.request(client, method, params, handler, bufnr)
  if M.has('nvim-0.11') then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

--- Blocking request; runs the event loop meanwhile so the server's own requests are answered.
function M.request_sync(client, method, params, timeout_ms, bufnr)
  if M.has('nvim-0.11') then
    return client:request_sync(method, params, timeout_ms, bufnr)
  end
  return client.request_sync(method, params, timeout_ms, bufnr)
end

--- The document version the client last sent for `bufnr` (what the server's edits are keyed to).
function M.buf_version(bufnr)
  local versions = vim.lsp.util.buf_versions
  local version = versions and versions[bufnr]
  if version == nil then
    return vim.NIL
  end
  return version
end

--- Byte column `col` (0-based) on line `line` (0-based) as a UTF-16 offset.
function M.utf16_col(bufnr, line, col)
  local text = vim.api.nvim_buf_get_lines(bufnr, line, line + 1, false)[1] or ''
  col = math.min(col, #text)
  if M.has('nvim-0.11') then
    return vim.str_utfindex(text, 'utf-16', col, false)
  end
  local _, utf16 = vim.str_utfindex(text, col)
  return utf16
end

function M.health()
  if vim.health and vim.health.start then
    return { start = vim.health.start, ok = vim.health.ok, warn = vim.health.warn, error = vim.health.error, info = vim.health.info }
  end
  local h = vim.health or require('health')
  return {
    start = h.report_start,
    ok = h.report_ok,
    warn = h.report_warn,
    error = h.report_error,
    info = h.report_info,
  }
end

return M
