-- :checkhealth lsp_agent
local compat = require('lsp_agent.compat')

local M = {}

local KEY_VARS = { 'LSP_AGENT_API_KEY', 'DEEPSEEK_API_KEY', 'MOONSHOT_API_KEY', 'OPENAI_API_KEY' }

-- What works: there is no registry package, so the server comes from a checkout.
local function install_advice()
  local checkout = require('lsp_agent').checkout
  local advice = {}
  if vim.fn.filereadable(checkout .. '/pyproject.toml') == 1 then
    table.insert(advice, string.format(
      'cd %s && python3 -m venv .venv && .venv/bin/pip install .   (the plugin then finds %s/.venv/bin/lsp-agent)',
      vim.fn.shellescape(checkout), checkout))
  else
    table.insert(advice, 'install lsp-agent from a clone of its repository: python3 -m venv .venv && .venv/bin/pip install .')
  end
  table.insert(advice, "or set the command: setup({ cmd = { '/path/to/clone/.venv/bin/lsp-agent', 'serve' } })"
    .. " or vim.lsp.config('lsp_agent', { cmd = { ... } })")
  return advice
end

function M.check()
  local h = compat.health()
  local agent = require('lsp_agent')
  h.start('lsp-agent')

  if compat.has('nvim-0.7') then
    h.ok('Neovim ' .. tostring(vim.version().major) .. '.' .. tostring(vim.version().minor))
  else
    h.error('Neovim 0.7 or newer is required')
  end

  local cmd, origin = agent.effective_cmd()
  local exe = cmd[1]
  if vim.fn.executable(exe) == 1 then
    local out = vim.trim(vim.fn.system({ exe, '--version' }))
    if vim.v.shell_error == 0 then
      h.ok(string.format('server command (%s): %s (%s)', origin, vim.fn.exepath(exe), out))
    else
      h.error(string.format('server command (%s) fails: %s --version: %s', origin, exe, out), install_advice())
    end
  else
    h.error(string.format('server command (%s) not found: %s', origin, exe), install_advice())
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
  M.check_trust(h, exe, client and client.config.root_dir or vim.fn.getcwd())

  if client then
    h.ok(string.format('server running (client id %d, root %s)', client.id, tostring(client.config.root_dir)))
  else
    h.info('no lsp-agent client attached to this buffer')
  end
end

-- Whether the workspace may choose the endpoint and credentials: the server's own answer
-- (`lsp-agent trust --json`, the same decision the server makes), never a guess made here.
function M.check_trust(h, exe, root)
  if vim.fn.executable(exe) ~= 1 then
    return
  end
  local out = vim.fn.system({ exe, 'trust', '--json', root })
  local ok, data = pcall(vim.fn.json_decode, out)
  if not ok or type(data) ~= 'table' or data.workspace == nil then
    return -- an lsp-agent without the trust command
  end
  local steering = data.steering_settings or {}
  if data.trusted then
    h.ok(string.format('workspace %s is trusted (by %s in %s)', data.workspace, data.trusted_by, data.user_config))
  elseif #steering > 0 then
    h.warn(
      string.format('%s sets %s: ignored, this workspace is not trusted to choose the endpoint or credentials',
        data.workspace_file, table.concat(steering, ', ')),
      { string.format('to trust it, add to %s: trusted_workspaces = ["%s"]', data.user_config, data.workspace) }
    )
  else
    h.info(string.format('workspace %s is not trusted: its .lsp-agent.toml may not choose the endpoint or credentials', data.workspace))
  end
end

return M
