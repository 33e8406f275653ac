-- Work-done progress of lsp-agent tasks: echoed in the command line and counted for a statusline.
-- The server creates one token per task (`lsp-agent/<taskId>`). Neovim 0.10+ fires the
-- `LspProgress` autocmd with the notification; older versions fire `User LspProgressUpdate` and
-- keep the messages in client.messages.progress.
local compat = require('lsp_agent.compat')

local M = {}

-- token -> last message, for tokens of running tasks only
local running = {}
local client_name = 'lsp_agent'
-- how many progress notifications of tasks arrived (tests and :checkhealth read it)
M.updates = 0

-- Tasks ('lsp-agent/t-<id>') and goal runs ('lsp-agent/goal/<id>'); not the indexing bar
-- ('lsp-agent/index', '#2' for another folder), which a task can overlap on a slow machine.
local function task_token(token)
  return type(token) == 'string'
    and token:match('^lsp%-agent/') ~= nil
    and token:match('^lsp%-agent/index') == nil
end

--- Record one progress value ({kind, title, message, percentage}) for `token`.
function M.update(token, value)
  if not task_token(token) or type(value) ~= 'table' then
    return
  end
  M.updates = M.updates + 1
  if value.kind == 'end' then
    running[token] = nil
  else
    local prev = running[token] or {}
    running[token] = {
      title = value.title or prev.title or token,
      message = value.message or prev.message or '',
      percentage = value.percentage or prev.percentage,
    }
  end
  local text = (value.title or (running[token] or {}).title or token)
  if value.message and value.message ~= '' then
    text = text .. ': ' .. value.message
  end
  if value.kind == 'end' then
    text = text .. ' (done)'
  elseif value.percentage then
    text = string.format('%s [%d%%]', text, value.percentage)
  end
  -- The server's titles already name it ('lsp-agent: indexing'); add the name only if not.
  if text:sub(1, #'lsp-agent') ~= 'lsp-agent' then
    text = 'lsp-agent: ' .. text
  end
  vim.api.nvim_echo({ { text } }, false, {})
end

--- "lsp-agent: N task(s)" while tasks run, "" otherwise.
function M.status()
  local n = vim.tbl_count(running)
  if n == 0 then
    return ''
  end
  return string.format('lsp-agent: %d task%s', n, n == 1 and '' or 's')
end

local function from_client(client_id)
  local client = vim.lsp.get_client_by_id(client_id)
  return client ~= nil and client.name == client_name
end

function M.setup(name)
  client_name = name or client_name
  local group = vim.api.nvim_create_augroup('lsp_agent_progress', { clear = true })
  if compat.has('nvim-0.10') then
    vim.api.nvim_create_autocmd('LspProgress', {
      group = group,
      callback = function(args)
        local data = args.data or {}
        if data.client_id and from_client(data.client_id) and data.params then
          M.update(data.params.token, data.params.value)
        end
      end,
    })
    return
  end
  vim.api.nvim_create_autocmd('User', {
    group = group,
    pattern = 'LspProgressUpdate',
    callback = function()
      for _, client in pairs(vim.lsp.get_active_clients()) do
        if client.name == client_name then
          for token, msg in pairs(client.messages.progress) do
            local kind = msg.done and 'end' or 'report'
            M.update(token, { kind = kind, title = msg.title, message = msg.message, percentage = msg.percentage })
          end
        end
      end
    end,
  })
end

return M
