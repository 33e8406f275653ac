"""The task commands' names, one copy: code actions carry ``RUN_TASK``, executeCommand serves all
three (a light module, so code actions do not load the task flow to name its command)."""

RUN_TASK = "lspAgent.runTask"
CANCEL_TASK = "lspAgent.cancelTask"
APPLY_TASK = "lspAgent.applyTask"
