-- :LspAgent run | cancel | tasks | context | goal | goals, and the client side of the server's
-- commands.
local compat = require('lsp_agent.compat')

local M = {}

local RUN_TASK = 'lspAgent.runTask'
-- Results the server can (re)apply: finished but not applied, or declined by the editor.
local FINISHED_UNAPPLIED = { succeeded = true, rejected = true }
local ACTIVE = { queued = true, running = true }

local function notify(msg, level)
  vim.notify('lsp-agent: ' .. msg, level or vim.log.levels.INFO)
end

local function client_or_warn(bufnr)
  local client = require('lsp_agent').client(bufnr)
  if not client then
    notify('no running server for this buffer (see :checkhealth lsp_agent)', vim.log.levels.WARN)
  end
  return client
end

local function execute(client, command, argument, bufnr, on_result)
  local params = { command = command, arguments = { argument } }
  compat.request(client, 'workspace/executeCommand', params, function(err, result)
    if err then
      notify(command .. ' failed: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      return
    end
    if on_result then
      on_result(result)
    end
  end, bufnr)
end

-- A refused task (e.g. no API key) comes back as {taskId = null, error = ...}; the server
-- also shows that error with window/showMessage, so only a started task is announced here.
local function announce(result)
  if type(result) == 'table' and type(result.taskId) == 'string' then
    notify('started task ' .. result.taskId)
  end
end

--- Send lspAgent.runTask, first asking for the instruction when the server says it needs one
--- (code actions with `needsInstruction: true`). `arg` is the server's own argument object.
function M.run_task(client, arg, bufnr, on_result)
  -- A shallow copy: vim.deepcopy cannot copy vim.NIL (userdata) before Neovim 0.9.
  local copy = {}
  for key, value in pairs(arg) do
    copy[key] = value
  end
  arg = copy
  local function send(instruction)
    if instruction ~= nil then
      arg.instruction = instruction
    end
    arg.needsInstruction = nil
    execute(client, RUN_TASK, arg, bufnr, on_result or announce)
  end
  local missing = arg.instruction == nil or arg.instruction == vim.NIL or arg.instruction == ''
  if arg.needsInstruction and missing then
    vim.ui.input({ prompt = 'lsp-agent instruction: ' }, function(input)
      if input and input ~= '' then
        send(input)
      end
    end)
  else
    send(nil)
  end
end

--- Registered in vim.lsp.commands so code actions chosen with vim.lsp.buf.code_action() go
--- through the instruction prompt.
function M.register_lsp_commands()
  vim.lsp.commands[RUN_TASK] = function(command, ctx)
    local client = vim.lsp.get_client_by_id(ctx.client_id)
    local arg = (command.arguments or {})[1] or {}
    M.run_task(client, arg, ctx.bufnr)
  end
end

--- The selection of the last :[range]LspAgent call as an LSP range (UTF-16 columns).
local function selection_range(bufnr, line1, line2)
  local mode = vim.fn.visualmode()
  local start_pos = vim.api.nvim_buf_get_mark(bufnr, '<')
  local end_pos = vim.api.nvim_buf_get_mark(bufnr, '>')
  if mode == 'v' and start_pos[1] == line1 and end_pos[1] == line2 then
    local end_line = end_pos[1] - 1
    local end_text = vim.api.nvim_buf_get_lines(bufnr, end_line, end_line + 1, false)[1] or ''
    -- '> is inclusive and may sit on a multibyte character: end after its last byte.
    local end_col = math.min(end_pos[2] + 1, #end_text)
    while end_col < #end_text and bit.band(end_text:byte(end_col + 1), 0xC0) == 0x80 do
      end_col = end_col + 1
    end
    return {
      start = { line = start_pos[1] - 1, character = compat.utf16_col(bufnr, start_pos[1] - 1, start_pos[2]) },
      ['end'] = { line = end_line, character = compat.utf16_col(bufnr, end_line, end_col) },
    }
  end
  -- Linewise: whole lines line1..line2 (1-based, inclusive).
  return { start = { line = line1 - 1, character = 0 }, ['end'] = { line = line2, character = 0 } }
end

--- :LspAgent run [instruction] — on the range, or the whole buffer without one.
function M.run(opts)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_or_warn(bufnr)
  if not client then
    return
  end
  local range = vim.NIL
  if opts.range and opts.range > 0 then
    range = selection_range(bufnr, opts.line1, opts.line2)
  end
  local arg = {
    uri = vim.uri_from_bufnr(bufnr),
    version = compat.buf_version(bufnr),
    range = range,
    diagnostics = {},
    preset = vim.NIL,
    instruction = vim.NIL,
    needsInstruction = true,
  }
  if opts.args and opts.args ~= '' then
    arg.instruction = opts.args
  end
  M.run_task(client, arg, bufnr)
end

local function fetch_tasks(client, bufnr, callback)
  compat.request(client, 'lspAgent/tasks', vim.empty_dict(), function(err, result)
    if err then
      notify('lspAgent/tasks failed: ' .. (err.message or ''), vim.log.levels.ERROR)
      return
    end
    callback((result or {}).tasks or {})
  end, bufnr)
end

--- One line per task, as shown in the pickers.
function M.format_task(task)
  local line = string.format('%s  %-15s %s', task.id, task.state, task.title or '')
  if task.message and task.message ~= vim.NIL and task.message ~= '' then
    line = line .. '  (' .. task.message .. ')'
  end
  return line
end

--- :LspAgent cancel [taskId] — without an id, pick among queued/running tasks.
function M.cancel(opts)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_or_warn(bufnr)
  if not client then
    return
  end
  local function cancel(id)
    execute(client, 'lspAgent.cancelTask', { taskId = id }, bufnr, function()
      notify('cancelled ' .. id)
    end)
  end
  if opts.args and opts.args ~= '' then
    return cancel(opts.args)
  end
  fetch_tasks(client, bufnr, function(tasks)
    local active = vim.tbl_filter(function(t)
      return ACTIVE[t.state]
    end, tasks)
    if #active == 0 then
      return notify('no running task')
    end
    vim.ui.select(active, { prompt = 'Cancel task', format_item = M.format_task }, function(task)
      if task then
        cancel(task.id)
      end
    end)
  end)
end

--- :LspAgent tasks — pick a task; a finished, unapplied result is applied on choice.
function M.tasks()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_or_warn(bufnr)
  if not client then
    return
  end
  fetch_tasks(client, bufnr, function(tasks)
    if #tasks == 0 then
      return notify('no tasks')
    end
    vim.ui.select(tasks, { prompt = 'lsp-agent tasks', format_item = M.format_task }, function(task)
      if not task then
        return
      end
      if FINISHED_UNAPPLIED[task.state] then
        execute(client, 'lspAgent.applyTask', { taskId = task.id }, bufnr, function()
          notify('applied ' .. task.id)
        end)
      elseif ACTIVE[task.state] then
        M.cancel({ args = task.id })
      else
        notify(M.format_task(task))
      end
    end)
  end)
end

--- Manifest JSON -> readable lines (one per file: tier, tokens, path).
function M.format_manifest(manifest)
  local lines = {
    string.format('budget %s  prefix %s  tail %s  prefix hash %s', tostring(manifest.budget),
      tostring(manifest.prefix_tokens), tostring(manifest.tail_tokens), tostring(manifest.prefix_hash)),
    '',
  }
  for _, f in ipairs(manifest.files or {}) do
    table.insert(lines, string.format('%-10s %8s  %-6s %s', tostring(f.tier), tostring(f.tokens),
      tostring(f.section or ''), tostring(f.path)))
  end
  return lines
end

--- :LspAgent context — the snapshot manifest for this buffer in a scratch split.
function M.context()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_or_warn(bufnr)
  if not client then
    return
  end
  local params = { uri = vim.uri_from_bufnr(bufnr) }
  compat.request(client, 'lspAgent/context', params, function(err, manifest)
    if err then
      return notify('lspAgent/context failed: ' .. (err.message or ''), vim.log.levels.ERROR)
    end
    vim.cmd('botright new')
    local out = vim.api.nvim_get_current_buf()
    vim.bo[out].buftype = 'nofile'
    vim.bo[out].bufhidden = 'wipe'
    vim.api.nvim_buf_set_lines(out, 0, -1, false, M.format_manifest(manifest or {}))
    vim.bo[out].modifiable = false
    pcall(vim.api.nvim_buf_set_name, out, 'lsp-agent://context')
  end, bufnr)
end

--- :LspAgent goal [GOAL] — run a project goal on its own branch (prompts without GOAL). The
--- server's progress names each step; nothing changes in your files until :LspAgent goals.
function M.goal(opts)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_or_warn(bufnr)
  if not client then
    return
  end
  local function start(goal)
    if not goal or goal:match('^%s*$') then
      return
    end
    local arg = { goal = goal }
    if vim.api.nvim_buf_get_name(bufnr) ~= '' then
      arg.uri = vim.uri_from_bufnr(bufnr) -- the run's folder: the one holding this buffer
    end
    execute(client, 'lspAgent.runGoal', arg, bufnr, function(result)
      if type(result) == 'table' and type(result.runId) == 'string' then
        notify('goal run ' .. result.runId .. ' on ' .. tostring(result.branch))
      end
    end)
  end
  if opts.args and opts.args ~= '' then
    return start(opts.args)
  end
  vim.ui.input({ prompt = 'lsp-agent goal: ' }, start)
end

--- One line per goal run, as shown in the picker.
function M.format_run(run)
  local goal = (tostring(run.goal or '')):match('^[^\n]*')
  return string.format('%s  %-15s %s/%s  %s', run.runId, run.state, tostring(run.done or 0),
    tostring(run.total or 0), goal)
end

--- :LspAgent goals — pick a goal run; a stopped one brings its final diff in (one applyEdit).
function M.goals()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_or_warn(bufnr)
  if not client then
    return
  end
  compat.request(client, 'lspAgent/tasks', vim.empty_dict(), function(err, result)
    if err then
      return notify('lspAgent/tasks failed: ' .. (err.message or ''), vim.log.levels.ERROR)
    end
    local runs = (result or {}).runs or {}
    if #runs == 0 then
      return notify('no goal runs')
    end
    vim.ui.select(runs, { prompt = 'lsp-agent goal runs', format_item = M.format_run }, function(run)
      if not run then
        return
      end
      if ACTIVE[run.state] or run.state == 'planning' then
        return execute(client, 'lspAgent.cancelGoal', { runId = run.runId }, bufnr, function()
          notify('cancelling ' .. run.runId)
        end)
      end
      execute(client, 'lspAgent.applyGoal', { runId = run.runId }, bufnr, function(res)
        if type(res) == 'table' and res.applied then
          notify('applied ' .. run.runId)
        end
      end)
    end)
  end, bufnr)
end

M.subcommands = {
  run = M.run,
  cancel = M.cancel,
  tasks = M.tasks,
  context = M.context,
  goal = M.goal,
  goals = M.goals,
}

--- Entry point of :LspAgent {sub} [args].
function M.dispatch(opts)
  local sub, rest = (opts.args or ''):match('^%s*(%S*)%s*(.-)%s*$')
  local fn = M.subcommands[sub]
  if not fn then
    return notify('usage: :LspAgent run|cancel|tasks|context|goal|goals', vim.log.levels.ERROR)
  end
  fn({ args = rest, range = opts.range, line1 = opts.line1, line2 = opts.line2 })
end

return M
