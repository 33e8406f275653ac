-- Loaded at startup: defines :LspAgent and an LspAttach hook. Modules load on first use; the
-- server starts when you call require('lsp_agent').setup() (or vim.lsp.enable('lsp_agent') on
-- Neovim 0.11+).
if vim.g.loaded_lsp_agent then
  return
end
vim.g.loaded_lsp_agent = true

vim.api.nvim_create_user_command('LspAgent', function(opts)
  require('lsp_agent.commands').dispatch(opts)
end, {
  nargs = '+',
  range = true,
  desc = 'lsp-agent: run | cancel | tasks | context | goal | goals',
  complete = function(arg_lead, cmdline)
    if cmdline:match('^%S*%s+%S*$') == nil then
      return {}
    end
    return vim.tbl_filter(function(name)
      return name:sub(1, #arg_lead) == arg_lead
    end, { 'run', 'cancel', 'tasks', 'context', 'goal', 'goals' })
  end,
})

-- However the client was started (setup() or vim.lsp.enable), once it attaches: code actions
-- that need an instruction prompt for it, and (0.11+) its code actions see every diagnostic.
if vim.fn.has('nvim-0.8') == 1 then
  require('lsp_agent.diagnostics').on_attach_hook()
end
