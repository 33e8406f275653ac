// The palette commands. Each one talks to the running client; none holds state of its own.
import * as vscode from 'vscode';
import { ExecuteCommandRequest } from 'vscode-languageclient/node';
import { APPLY_GOAL, RUN_GOAL, buildRunGoalArgument, canApplyRun, parseRuns, runPickItem } from './goals';
import { ApiKeyStore } from './secrets';
import { ServerManager } from './server';
import { TaskStatusBar } from './statusBar';
import {
  APPLY_TASK,
  CANCEL_TASK,
  CONTEXT_REQUEST,
  RUN_TASK,
  TASKS_REQUEST,
  TaskInfo,
  buildRunTaskArgument,
  canApply,
  cancelOutcome,
  isActive,
  manifestMarkdown,
  taskPickItem,
} from './tasks';

export function registerCommands(
  context: vscode.ExtensionContext,
  server: ServerManager,
  statusBar: TaskStatusBar,
  keys: ApiKeyStore,
): void {
  const client = () => {
    const c = server.running;
    if (!c) void vscode.window.showWarningMessage('LSP Agent: the server is not running.');
    return c;
  };
  const execute = async (command: string, argument: unknown): Promise<unknown> => {
    const c = client();
    if (!c) return undefined;
    const result = await c.sendRequest(ExecuteCommandRequest.type, { command, arguments: [argument] });
    void statusBar.refresh();
    return result;
  };
  const pickTask = async (filter: (t: TaskInfo) => boolean, placeHolder: string) => {
    const tasks = (await statusBar.refresh()).filter(filter);
    if (tasks.length === 0) {
      void vscode.window.showInformationMessage('LSP Agent: no matching task.');
      return undefined;
    }
    return (await vscode.window.showQuickPick(tasks.map(taskPickItem), { placeHolder }))?.task;
  };

  const register = (id: string, fn: () => unknown) =>
    context.subscriptions.push(vscode.commands.registerCommand(id, fn));

  register('lspAgent.runInstruction', async () => {
    const editor = vscode.window.activeTextEditor;
    const c = client();
    if (!editor || !c) return;
    const instruction = await vscode.window.showInputBox({
      title: 'LSP Agent: Run Instruction on Selection',
      prompt: editor.selection.isEmpty ? 'Instruction for this file' : 'Instruction for the selection',
      ignoreFocusOut: true,
    });
    if (!instruction) return;
    const doc = editor.document;
    const range = editor.selection.isEmpty ? null : c.code2ProtocolConverter.asRange(editor.selection);
    const arg = buildRunTaskArgument(c.code2ProtocolConverter.asUri(doc.uri), doc.version, range, instruction);
    // A refused task ({taskId: null, error}) is already shown by the server (showMessage); a
    // started one shows in the status bar's task count and the server's progress.
    await execute(RUN_TASK, arg);
  });

  // A goal runs on its own branch; the server's progress names the step, and its end message
  // and showMessage report the outcome. Distinct ids: the server's own command ids are
  // registered by the language client.
  register('lspAgent.goal', async () => {
    const c = client();
    if (!c) return;
    const goal = await vscode.window.showInputBox({
      title: 'LSP Agent: Run a Goal',
      prompt: 'What should the run achieve? It works on its own branch; your files change only when you apply it.',
      ignoreFocusOut: true,
    });
    if (!goal?.trim()) return;
    const editor = vscode.window.activeTextEditor;
    const folder =
      (editor && vscode.workspace.getWorkspaceFolder(editor.document.uri)) ?? vscode.workspace.workspaceFolders?.[0];
    const uri = folder ? c.code2ProtocolConverter.asUri(folder.uri) : null;
    await execute(RUN_GOAL, buildRunGoalArgument(goal, uri));
  });

  register('lspAgent.goalResult', async () => {
    const c = client();
    if (!c) return;
    const runs = parseRuns(await c.sendRequest(TASKS_REQUEST, {})).filter(canApplyRun);
    if (runs.length === 0) {
      void vscode.window.showInformationMessage('LSP Agent: no goal run to apply.');
      return;
    }
    const pick = await vscode.window.showQuickPick(runs.map(runPickItem), { placeHolder: 'Apply which run?' });
    if (pick) await execute(APPLY_GOAL, { runId: pick.run.runId });
  });

  // The server ends the task's progress silently on a cancel, so say what happened here.
  const cancel = async (task: TaskInfo) => {
    const outcome = cancelOutcome(task, await execute(CANCEL_TASK, { taskId: task.id }));
    if (outcome.ok) vscode.window.setStatusBarMessage(outcome.text, 5000);
    else void vscode.window.showInformationMessage(outcome.text);
  };

  register('lspAgent.cancel', async () => {
    const task = await pickTask(isActive, 'Cancel which task?');
    if (task) await cancel(task);
  });

  register('lspAgent.showTasks', async () => {
    const task = await pickTask(() => true, 'LSP Agent tasks');
    if (!task) return;
    if (canApply(task)) {
      await execute(APPLY_TASK, { taskId: task.id });
    } else if (isActive(task)) {
      const choice = await vscode.window.showWarningMessage(`Cancel "${task.title}"?`, 'Cancel Task');
      if (choice) await cancel(task);
    }
  });

  register('lspAgent.showContext', async () => {
    const c = client();
    const editor = vscode.window.activeTextEditor;
    if (!c || !editor) return;
    const manifest = await c.sendRequest(CONTEXT_REQUEST, {
      uri: c.code2ProtocolConverter.asUri(editor.document.uri),
    });
    const doc = await vscode.workspace.openTextDocument({
      language: 'markdown',
      content: manifestMarkdown(manifest),
    });
    await vscode.window.showTextDocument(doc, { preview: true, viewColumn: vscode.ViewColumn.Beside });
  });

  register('lspAgent.restartServer', () => server.restart());

  register('lspAgent.setApiKey', async () => {
    // The key reaches the server through its environment, so a running server must restart.
    if (await keys.prompt()) await server.restart();
  });

  register('lspAgent.clearApiKey', async () => {
    await keys.clear();
    await server.restart();
  });
}
