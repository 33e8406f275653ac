-- End-to-end test of the Neovim plugin in a real, headless Neovim (0.7 to 0.12).
--
--   nvim --headless -u NONE -i NONE --cmd 'set rtp^=editors/nvim' -c 'luafile tests/editors/nvim/e2e.lua'
--
-- Driven by environment variables (tests/editors/test_nvim.py sets them):
--   LSP_AGENT_E2E_CMD          JSON list: the server command
--   LSP_AGENT_E2E_FILE         the file to open
--   LSP_AGENT_E2E_EXPECT       a file holding the buffer text expected after the task lands
--   LSP_AGENT_E2E_RANGE        JSON: the LSP range to ask code actions for (the selection)
--   LSP_AGENT_E2E_DIAGNOSTICS  JSON list: the diagnostics sent in the code action context
--   LSP_AGENT_E2E_ACTION       plain substring of the code action title to choose
--   LSP_AGENT_E2E_INSTRUCTION  answer to the instruction prompt, if the action asks for one
--   LSP_AGENT_E2E_REPORT       where to write a JSON report for the test to check
--   LSP_AGENT_E2E_TIMEOUT_MS   how long to wait for the edit (default 90000)
--   LSP_AGENT_E2E_EXPECT_ERROR substring of an error notification expected instead of an edit
--   LSP_AGENT_E2E_SETUP        'setup' (default: require('lsp_agent').setup) or 'enable'
--                              (0.11+: lsp/lsp_agent.lua through vim.lsp.config/enable)
--   LSP_AGENT_E2E_REJECT_FIRST '1': decline the first workspace/applyEdit (as a user declining a
--                              preview), then apply the journaled result with :LspAgent tasks
--   LSP_AGENT_E2E_CANCEL       '1': once the task runs, cancel it with :LspAgent cancel and expect
--                              state 'cancelled' and an unchanged buffer
--   LSP_AGENT_E2E_MODE         'code_action' (default) or 'command': `:'<,'>LspAgent run` on a
--                              characterwise visual selection of lines 1-2, or 'menu': wait for
--                              a diagnostic of the other server, put the cursor on it and choose
--                              from the real vim.lsp.buf.code_action() menu
--                              'goal': `:LspAgent goal <INSTRUCTION>`, wait for the run to
--                              succeed (its progress names the steps), then `:LspAgent goals`,
--                              pick the run: its final diff lands as one workspace/applyEdit
--   LSP_AGENT_E2E_OTHER_SERVER JSON list: a second language server to attach first (e.g. ruff)
-- Exits 0 on success, non-zero (:cquit) with the reason on stderr on failure.
local report = { steps = {} }
local run_goal -- defined below, used by run()
local timeout = tonumber(os.getenv('LSP_AGENT_E2E_TIMEOUT_MS') or '') or 90000

local function step(name)
  table.insert(report.steps, name)
end

local function write_report()
  local path = os.getenv('LSP_AGENT_E2E_REPORT')
  if path then
    local f = assert(io.open(path, 'w'))
    f:write(vim.fn.json_encode(report))
    f:close()
  end
end

local function fail(msg)
  report.error = msg
  write_report()
  io.stderr:write('nvim e2e FAILED at step ' .. tostring(report.steps[#report.steps]) .. ': ' .. msg .. '\n')
  vim.cmd('cquit! 3')
end

local function read_file(path)
  local f = assert(io.open(path, 'r'))
  local text = f:read('*a')
  f:close()
  return text
end

local function buffer_text(bufnr)
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  local text = table.concat(lines, '\n')
  if vim.bo[bufnr].eol then
    text = text .. '\n'
  end
  return text
end

local function run_code_action(client, bufnr, compat)
  step('request code actions')
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = vim.fn.json_decode(os.getenv('LSP_AGENT_E2E_RANGE')),
    context = { diagnostics = vim.fn.json_decode(os.getenv('LSP_AGENT_E2E_DIAGNOSTICS')) },
  }
  local response, err = compat.request_sync(client, 'textDocument/codeAction', params, 30000, bufnr)
  if not response then
    return fail('textDocument/codeAction: ' .. tostring(err))
  end
  if response.err then
    return fail('textDocument/codeAction error: ' .. vim.inspect(response.err))
  end
  local actions = response.result or {}
  report.actions = {}
  local wanted = os.getenv('LSP_AGENT_E2E_ACTION')
  local chosen
  for _, action in ipairs(actions) do
    table.insert(report.actions, action.title)
    if chosen == nil and action.title:find(wanted, 1, true) then
      chosen = action
    end
  end
  if not chosen then
    return fail('no code action titled like ' .. wanted .. ' in ' .. vim.inspect(report.actions))
  end
  report.chosen = chosen.title

  -- Neovim 0.10+ announces resolveSupport for 'command', so the server sends bare actions and
  -- fills in the command on codeAction/resolve, as vim.lsp.buf.code_action() asks it to.
  if chosen.command == nil and chosen.edit == nil then
    step('resolve the code action')
    local resolved = compat.request_sync(client, 'codeAction/resolve', chosen, 10000, bufnr)
    if not resolved or resolved.err or not resolved.result then
      return fail('codeAction/resolve: ' .. vim.inspect(resolved))
    end
    chosen = resolved.result
    report.resolved = true
  end

  step('execute the code action')
  -- Exactly what vim.lsp.buf.code_action() does with a chosen action: apply its edit, then run
  -- its command through client.commands / vim.lsp.commands, else workspace/executeCommand.
  if chosen.edit then
    vim.lsp.util.apply_workspace_edit(chosen.edit, client.offset_encoding or 'utf-16')
  end
  local command = type(chosen.command) == 'table' and chosen.command or chosen
  if type(command.command) == 'string' then
    local fn = (client.commands or {})[command.command] or vim.lsp.commands[command.command]
    if not fn then
      return fail('plugin did not register a handler for ' .. command.command)
    end
    fn(command, { bufnr = bufnr, client_id = client.id })
  end

  return true
end

-- The second server, attached the way a user's config would (0.8+: vim.lsp.start).
local function start_other_server(bufnr, cmd, compat)
  local config = {
    name = 'other',
    cmd = cmd,
    root_dir = vim.fn.getcwd(),
    workspace_folders = { { uri = vim.uri_from_fname(vim.fn.getcwd()), name = 'ws' } },
  }
  if compat.has('nvim-0.8') then
    return vim.lsp.start(config, { bufnr = bufnr })
  end
  local id = vim.lsp.start_client(config)
  vim.lsp.buf_attach_client(bufnr, id)
  return id
end

-- What a user does: cursor on the other server's diagnostic, then vim.lsp.buf.code_action().
-- Neovim itself builds each server's context, resolves and executes the chosen action.
local function run_code_action_menu(bufnr)
  step("wait for the other server's diagnostic")
  local diagnostics = {}
  vim.wait(30000, function()
    diagnostics = vim.diagnostic.get(bufnr)
    return #diagnostics > 0
  end, 50)
  if #diagnostics == 0 then
    return fail('the other server published no diagnostic')
  end
  report.other_diagnostics = vim.tbl_map(function(d)
    return { source = d.source, message = d.message, lnum = d.lnum }
  end, diagnostics)
  vim.api.nvim_win_set_cursor(0, { diagnostics[1].lnum + 1, diagnostics[1].col })

  step('vim.lsp.buf.code_action()')
  local wanted = os.getenv('LSP_AGENT_E2E_ACTION')
  local shown
  vim.ui.select = function(items, opts, on_choice)
    shown = {}
    local pick
    for _, item in ipairs(items) do
      local title = opts.format_item(item)
      table.insert(shown, title)
      if pick == nil and title:find(wanted, 1, true) then
        pick = item
      end
    end
    report.actions = shown
    report.chosen = pick and opts.format_item(pick) or nil
    on_choice(pick)
  end
  vim.lsp.buf.code_action()
  vim.wait(30000, function()
    return shown ~= nil
  end, 50)
  if shown == nil then
    return fail('vim.lsp.buf.code_action() showed no menu')
  end
  if report.chosen == nil then
    return fail('no code action titled like ' .. wanted .. ' in ' .. vim.inspect(shown))
  end
  return true
end

-- :LspAgent goal GOAL, then :LspAgent goals to bring the finished run's diff in.
run_goal = function(client, bufnr, compat)
  local edits = 0
  local apply_edit = vim.lsp.handlers['workspace/applyEdit']
  vim.lsp.handlers['workspace/applyEdit'] = function(...)
    edits = edits + 1
    return apply_edit(...)
  end
  step(':LspAgent goal')
  vim.cmd('LspAgent goal ' .. os.getenv('LSP_AGENT_E2E_INSTRUCTION'))
  step('wait for the run to finish')
  local run
  vim.wait(timeout, function()
    local r = compat.request_sync(client, 'lspAgent/tasks', vim.empty_dict(), 5000, bufnr)
    for _, candidate in ipairs((r and r.result and r.result.runs) or {}) do
      if candidate.state ~= 'running' and candidate.state ~= 'planning' then
        run = candidate
        return true
      end
    end
    return false
  end, 100)
  if not run then
    return fail('the goal run did not finish within ' .. timeout .. ' ms')
  end
  report.run = run
  report.edits_before_apply = edits
  report.text_before_apply = buffer_text(bufnr)
  step(':LspAgent goals, pick the run')
  vim.ui.select = function(items, opts, on_choice)
    report.picker = vim.tbl_map(opts.format_item, items)
    on_choice(items[1])
  end
  vim.cmd('LspAgent goals')
  step('wait for the edit')
  local expected = read_file(os.getenv('LSP_AGENT_E2E_EXPECT'))
  local landed = vim.wait(timeout, function()
    return buffer_text(bufnr) == expected
  end, 100)
  report.text = buffer_text(bufnr)
  if not landed then
    return fail('buffer text after ' .. timeout .. ' ms:\n' .. report.text)
  end
  vim.wait(500, function()
    return false
  end, 50) -- a second applyEdit, if one were sent, would arrive now
  report.edits = edits
  local tasks = compat.request_sync(client, 'lspAgent/tasks', vim.empty_dict(), 10000, bufnr)
  report.tasks = (tasks and tasks.result and tasks.result.tasks) or {}
  report.progress_updates = require('lsp_agent.progress').updates
  step('done')
  write_report()
  vim.cmd('qall!')
end

local function run()
  local v = vim.version()
  report.nvim = string.format('%d.%d.%d', v.major, v.minor, v.patch)

  report.notifications = {}
  vim.notify = function(msg, level)
    table.insert(report.notifications, { msg = tostring(msg), level = level or vim.log.levels.INFO })
  end

  -- What the plugin echoes (progress lines), to check their wording.
  report.echoed = {}
  local echo = vim.api.nvim_echo
  vim.api.nvim_echo = function(chunks, history, opts)
    for _, chunk in ipairs(chunks) do
      table.insert(report.echoed, chunk[1])
    end
    return echo(chunks, history, opts)
  end

  step('load plugin')
  vim.cmd('runtime plugin/lsp_agent.lua')
  if vim.fn.exists(':LspAgent') ~= 2 then
    return fail(':LspAgent was not defined by plugin/lsp_agent.lua')
  end
  local agent = require('lsp_agent')
  local commands = require('lsp_agent.commands')
  local compat = require('lsp_agent.compat')
  local server_cmd = vim.fn.json_decode(os.getenv('LSP_AGENT_E2E_CMD'))
  if os.getenv('LSP_AGENT_E2E_SETUP') == 'enable' then
    -- The 0.11+ way: the data table in lsp/lsp_agent.lua, picked up from 'runtimepath'.
    vim.cmd('filetype on')
    vim.lsp.config('lsp_agent', { cmd = server_cmd })
    vim.lsp.enable('lsp_agent')
    commands.register_lsp_commands()
    require('lsp_agent.progress').setup('lsp_agent')
  else
    agent.setup({ cmd = server_cmd })
  end

  step('open file and attach')
  local file = os.getenv('LSP_AGENT_E2E_FILE')
  vim.cmd('edit ' .. vim.fn.fnameescape(file))
  local bufnr = vim.api.nvim_get_current_buf()
  local client
  local ready = vim.wait(30000, function()
    client = agent.client(bufnr)
    return client ~= nil and client.initialized ~= false and client.server_capabilities ~= nil
      and next(client.server_capabilities) ~= nil
  end, 50)
  if not ready then
    return fail('the server did not initialize within 30 s')
  end
  if not vim.lsp.buf_is_attached(bufnr, client.id) then
    return fail('client not attached to the buffer')
  end
  report.client_name = client.name
  report.root_dir = client.config.root_dir
  report.filetypes = client.config.filetypes

  local asked = {}
  vim.ui.input = function(opts, on_confirm)
    table.insert(asked, opts.prompt or '')
    on_confirm(os.getenv('LSP_AGENT_E2E_INSTRUCTION'))
  end
  local reject_first = os.getenv('LSP_AGENT_E2E_REJECT_FIRST') == '1'
  local apply_edit = vim.lsp.handlers['workspace/applyEdit']
  if reject_first then
    vim.lsp.handlers['workspace/applyEdit'] = function()
      vim.lsp.handlers['workspace/applyEdit'] = apply_edit
      report.declined = true
      return { applied = false, failureReason = 'declined by the e2e test' }
    end
  end

  local other = os.getenv('LSP_AGENT_E2E_OTHER_SERVER') or ''
  if other ~= '' then
    step('attach the other server')
    if not start_other_server(bufnr, vim.fn.json_decode(other), compat) then
      return fail('could not start ' .. other)
    end
  end

  local mode = os.getenv('LSP_AGENT_E2E_MODE') or 'code_action'
  if mode == 'goal' then
    return run_goal(client, bufnr, compat)
  end
  if mode == 'menu' then
    if not run_code_action_menu(bufnr) then
      return
    end
  elseif mode == 'command' then
    step(":'<,'>LspAgent run on a characterwise selection")
    vim.cmd('normal! gg0vj$')
    vim.cmd('execute "normal! \\<Esc>"')
    vim.cmd("'<,'>LspAgent run")
  elseif not run_code_action(client, bufnr, compat) then
    return
  end

  local function wait_state(state)
    local found
    vim.wait(timeout, function()
      local r = compat.request_sync(client, 'lspAgent/tasks', vim.empty_dict(), 5000, bufnr)
      for _, t in ipairs((r and r.result and r.result.tasks) or {}) do
        if t.state == state then
          found = t
          return true
        end
      end
      return false
    end, 100)
    return found
  end

  if os.getenv('LSP_AGENT_E2E_CANCEL') == '1' then
    step('wait for the task to run')
    if not wait_state('running') then
      return fail('the task never ran')
    end
    step('statusline shows the running task')
    vim.wait(timeout, function()
      return agent.status() ~= ''
    end, 50)
    report.status_running = agent.status()
    -- An indexing bar (a re-index, or a slow machine's first one) is not a task.
    local progress = require('lsp_agent.progress')
    progress.update('lsp-agent/index', { kind = 'begin', title = 'lsp-agent: indexing' })
    report.status_while_indexing = agent.status()
    progress.update('lsp-agent/index', { kind = 'end' })
    step(':LspAgent cancel')
    vim.ui.select = function(items, opts, on_choice)
      report.picker = vim.tbl_map(opts.format_item, items)
      on_choice(items[1])
    end
    vim.cmd('LspAgent cancel')
    step('wait for the task to be cancelled')
    local task = wait_state('cancelled')
    if not task then
      return fail('the task was not cancelled')
    end
    report.tasks = { task }
    -- The task's progress ends with the cancellation, and the statusline goes quiet.
    vim.wait(timeout, function()
      return agent.status() == ''
    end, 50)
    report.status_after = agent.status()
    report.text = buffer_text(bufnr)
    step('done')
    write_report()
    vim.cmd('qall!')
    return
  end

  local expect_error = os.getenv('LSP_AGENT_E2E_EXPECT_ERROR')
  if expect_error and expect_error ~= '' then
    step('wait for the error notification')
    local seen = vim.wait(30000, function()
      for _, n in ipairs(report.notifications) do
        if n.level == vim.log.levels.ERROR and n.msg:find(expect_error, 1, true) then
          return true
        end
      end
      return false
    end, 50)
    report.asked_instruction = asked
    report.text = buffer_text(bufnr)
    if not seen then
      return fail('no error notification like ' .. expect_error .. ': ' .. vim.inspect(report.notifications))
    end
    step('done')
    write_report()
    vim.cmd('qall!')
    return
  end

  if reject_first then
    step('wait for the task to be rejected')
    local task_id
    local rejected = vim.wait(timeout, function()
      local r = compat.request_sync(client, 'lspAgent/tasks', vim.empty_dict(), 5000, bufnr)
      for _, t in ipairs((r and r.result and r.result.tasks) or {}) do
        if t.state == 'rejected' then
          task_id = t.id
          return true
        end
      end
      return false
    end, 100)
    if not rejected then
      return fail('the declined task never became rejected')
    end
    step(':LspAgent tasks, pick the rejected task')
    vim.ui.select = function(items, opts, on_choice)
      report.picker = {}
      local pick
      for _, item in ipairs(items) do
        table.insert(report.picker, opts.format_item(item))
        if item.id == task_id then
          pick = item
        end
      end
      on_choice(pick)
    end
    vim.cmd('LspAgent tasks')
  end

  step('wait for the edit')
  local expected = read_file(os.getenv('LSP_AGENT_E2E_EXPECT'))
  local landed = vim.wait(timeout, function()
    return buffer_text(bufnr) == expected
  end, 100)
  report.asked_instruction = asked
  report.text = buffer_text(bufnr)
  if not landed then
    return fail('buffer text after ' .. timeout .. ' ms:\n' .. report.text)
  end

  step('lspAgent/tasks')
  local tasks = compat.request_sync(client, 'lspAgent/tasks', vim.empty_dict(), 10000, bufnr)
  if not tasks or tasks.err then
    return fail('lspAgent/tasks: ' .. vim.inspect(tasks))
  end
  report.tasks = tasks.result.tasks

  step(':LspAgent context')
  vim.cmd('LspAgent context')
  local manifest_buf
  vim.wait(10000, function()
    for _, b in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_get_name(b):find('lsp-agent://context', 1, true) then
        manifest_buf = b
        return true
      end
    end
    return false
  end, 50)
  if not manifest_buf then
    return fail(':LspAgent context opened no manifest buffer')
  end
  report.context_lines = vim.api.nvim_buf_get_lines(manifest_buf, 0, -1, false)

  step('statusline and format helpers')
  report.status = agent.status()
  report.progress_updates = require('lsp_agent.progress').updates
  report.formatted_task = commands.format_task(report.tasks[1] or { id = '?', state = '?' })

  step('done')
  write_report()
  vim.cmd('qall!')
end

local ok, err = xpcall(run, debug.traceback)
if not ok then
  fail('error: ' .. tostring(err))
end
