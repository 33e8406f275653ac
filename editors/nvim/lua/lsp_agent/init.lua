-- lsp-agent for Neovim: starts `lsp-agent serve` for buffers under a project root.
--
-- Works from Neovim 0.7 on: `vim.lsp.start` (0.8+) reuses one client per root by itself; before
-- 0.8 we keep that map here and use `vim.lsp.start_client` + `vim.lsp.buf_attach_client`.
-- On 0.11+ you may instead use the data table in lsp/lsp_agent.lua with `vim.lsp.enable`.
local compat = require('lsp_agent.compat')

local M = {}

M.name = 'lsp_agent'

local defaults = {
  cmd = { 'lsp-agent', 'serve' },
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
    cmd = cfg.cmd,
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
      vim.notify('lsp-agent: cannot start ' .. table.concat(M.config.cmd, ' '), vim.log.levels.ERROR)
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
  require('lsp_agent.commands').register_lsp_commands()
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

--- Statusline component: "lsp-agent: 2 tasks" while tasks run, "" otherwise.
function M.status()
  return require('lsp_agent.progress').status()
end

return M
