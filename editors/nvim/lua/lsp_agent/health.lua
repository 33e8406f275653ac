-- :checkhealth lsp_agent
local compat = require('lsp_agent.compat')

local M = {}

local KEY_VARS = { 'LSP_AGENT_API_KEY', 'DEEPSEEK_API_KEY', 'MOONSHOT_API_KEY', 'OPENAI_API_KEY' }

function M.check()
  local h = compat.health()
  local agent = require('lsp_agent')
  h.start('lsp-agent')

  if compat.has('nvim-0.7') then
    h.ok('Neovim ' .. tostring(vim.version().major) .. '.' .. tostring(vim.version().minor))
  else
    h.error('Neovim 0.7 or newer is required')
  end

  local exe = agent.config.cmd[1]
  if vim.fn.executable(exe) == 1 then
    local out = vim.fn.system({ exe, '--version' })
    h.ok('server command: ' .. vim.fn.exepath(exe) .. ' (' .. vim.trim(out) .. ')')
  else
    h.error('server command not found: ' .. exe, { 'pip install lsp-agent, or set cmd in setup()' })
  end

  local found = nil
  for _, var in ipairs(KEY_VARS) do
    if vim.env[var] and vim.env[var] ~= '' then
      found = var
      break
    end
  end
  local base_url = (agent.config.settings or {}).baseUrl or vim.env.LSP_AGENT_BASE_URL
  if found then
    h.ok('API key from $' .. found)
  elseif base_url then
    h.info('no API key set; fine for a local endpoint (' .. base_url .. ')')
  else
    h.warn('no API key in the environment', { 'export LSP_AGENT_API_KEY=... before starting Neovim' })
  end

  local client = agent.client()
  if client then
    h.ok(string.format('server running (client id %d, root %s)', client.id, tostring(client.config.root_dir)))
  else
    h.info('no lsp-agent client attached to this buffer')
  end
end

return M
