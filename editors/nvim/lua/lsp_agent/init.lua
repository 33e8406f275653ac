-- lsp-agent for Neovim: starts `lsp-agent serve` for buffers under a project root.
--
-- Works from Neovim 0.7 on: `vim.lsp.start` (0.8+) reuses one client per root by itself; before
-- 0.8 we keep that map here and use `vim.lsp.start_client` + `vim.lsp.buf_attach_client`.
-- On 0.11+ you may instead use the data table in lsp/lsp_agent.lua with `vim.lsp.enable`.
local compat = require('lsp_agent.compat')

local M = {}

M.name = 'lsp_agent'

-- The checkout this plugin lives in (…/editors/nvim/lua/lsp_agent/init.lua → …).
local plugin_file = debug.getinfo(1, 'S').source:gsub('^@', '')
M.checkout = vim.fn.fnamemodify(plugin_file, ':p:h:h:h:h:h')

--- The server command when none is set: the checkout's own `.venv` (created by
--- `python3 -m venv .venv && .venv/bin/pip install .` in it, the same version as this plugin),
--- else `lsp-agent` on $PATH.
function M.default_cmd()
  for _, exe in ipairs({ '/.venv/bin/lsp-agent', '/.venv/Scripts/lsp-agent.exe' }) do
    if vim.fn.executable(M.checkout .. exe) == 1 then
      return { M.checkout .. exe, 'serve' }
    end
  end
  return { 'lsp-agent', 'serve' }
end

local defaults = {
  cmd = nil, -- nil: M.default_cmd()
  -- Extra environment for the server process (e.g. LSP_AGENT_BASE_URL). The API key belongs
  -- in the editor's own environment (LSP_AGENT_API_KEY), never in a config file.
  cmd_env = nil,
  -- nil attaches to every buffer that has a file; otherwise a list of filetypes.
  filetypes = nil,
  root_markers = { '.lsp-agent.toml', 'pyproject.toml', 'package.json', 'go.mod', 'Cargo.toml', '.git' },
  -- The `lspAgent` settings section: provider, baseUrl, model, models, contextBudget, ignore,
  -- confirmEdits, budgets. Sent as initializationOptions and on workspace/configuration.
  settings = {},
  -- Echo work-done progress of tasks in the command line.
  progress = true,
  on_attach = nil,
}

M.config = vim.deepcopy(defaults)

-- root_dir -> client id, for Neovim < 0.8 only
local clients_by_root = {}
local augroup = nil

-- An empty Lua table encodes as a JSON array; the server wants objects.
local function object(tbl)
  if tbl == nil or next(tbl) == nil then
    return vim.empty_dict()
  end
  return tbl
end

local function client_config(root_dir)
  local cfg = M.config
  return {
    name = M.name,
    cmd = cfg.cmd or M.default_cmd(),
    cmd_env = cfg.cmd_env,
    root_dir = root_dir,
    workspace_folders = { { uri = vim.uri_from_fname(root_dir), name = root_dir } },
    init_options = object(cfg.settings),
    settings = { lspAgent = object(cfg.settings) },
    on_attach = cfg.on_attach,
  }
end

--- Attach the server to `bufnr` (default: current buffer). Returns the client id or nil.
function M.attach(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if vim.bo[bufnr].buftype ~= '' then
    return nil
  end
  local fname = vim.api.nvim_buf_get_name(bufnr)
  if fname == '' then
    return nil
  end
  local root = compat.find_root(fname, M.config.root_markers)
  if compat.has('nvim-0.8') then
    return vim.lsp.start(client_config(root), { bufnr = bufnr })
  end
  local id = clients_by_root[root]
  if id == nil or vim.lsp.get_client_by_id(id) == nil then
    id = vim.lsp.start_client(client_config(root))
    if id == nil then
      local cmd = M.config.cmd or M.default_cmd()
      vim.notify('lsp-agent: cannot start ' .. table.concat(cmd, ' ') .. ' (see :checkhealth lsp_agent)', vim.log.levels.ERROR)
      return nil
    end
    clients_by_root[root] = id
  end
  vim.lsp.buf_attach_client(bufnr, id)
  return id
end

--- The lsp-agent client attached to `bufnr` (default: current buffer), or any running one.
function M.client(bufnr)
  return compat.get_client(M.name, bufnr or vim.api.nvim_get_current_buf())
end

--- `setup(opts)`: merge `opts` over the defaults, attach to matching buffers as they open.
function M.setup(opts)
  M.config = vim.tbl_deep_extend('force', vim.deepcopy(defaults), opts or {})
  M.set_up = true
  require('lsp_agent.commands').register_lsp_commands()
  if compat.has('nvim-0.8') then
    require('lsp_agent.diagnostics').on_attach_hook(M.name)
  end
  if M.config.progress then
    require('lsp_agent.progress').setup(M.name)
  end
  augroup = vim.api.nvim_create_augroup('lsp_agent', { clear = true })
  local event = M.config.filetypes and 'FileType' or { 'BufReadPost', 'BufNewFile' }
  vim.api.nvim_create_autocmd(event, {
    group = augroup,
    pattern = M.config.filetypes or '*',
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  -- Buffers opened before setup() ran (e.g. `nvim file` with a lazy plugin manager).
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    local ft = vim.bo[bufnr].filetype
    local wanted = M.config.filetypes == nil or vim.tbl_contains(M.config.filetypes, ft)
    if vim.api.nvim_buf_is_loaded(bufnr) and wanted then
      M.attach(bufnr)
    end
  end
end

--- The command the server is (or would be) started with, and where that choice came from:
--- the running client's, setup()'s `cmd`, vim.lsp.config('lsp_agent')'s, else the default.
function M.effective_cmd()
  local client = M.client()
  if client and type(client.config.cmd) == 'table' then
    return client.config.cmd, 'the running client'
  end
  if M.set_up and M.config.cmd then
    return M.config.cmd, "setup({ cmd = ... })"
  end
  if not M.set_up and compat.has('nvim-0.11') then
    local ok, config = pcall(function()
      return vim.lsp.config[M.name]
    end)
    -- (lsp/lsp_agent.lua's own cmd is the default: only a changed one is the user's.)
    if ok and config and type(config.cmd) == 'table' and not vim.deep_equal(config.cmd, M.default_cmd()) then
      return config.cmd, "vim.lsp.config('lsp_agent')"
    end
  end
  return M.default_cmd(), 'the default'
end

--- Statusline component: "lsp-agent: 2 tasks" while tasks run, "" otherwise.
function M.status()
  return require('lsp_agent.progress').status()
end

return M
