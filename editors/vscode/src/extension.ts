// Entry point: wires the output channels, the server, the status bar and the commands.
import * as vscode from 'vscode';
import { DidChangeConfigurationNotification } from 'vscode-languageclient/node';
import { registerCommands } from './common/commands';
import { needsRestart } from './common/options';
import { ApiKeyStore } from './common/secrets';
import { ServerManager } from './common/server';
import { SECTION, initializationOptions } from './common/settings';
import { TaskStatusBar } from './common/statusBar';

let server: ServerManager | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('LSP Agent', { log: true });
  const trace = vscode.window.createOutputChannel('LSP Agent Trace');
  const keys = new ApiKeyStore(context.secrets);
  const statusBar = new TaskStatusBar();
  server = new ServerManager(output, trace, keys);
  context.subscriptions.push(output, trace, statusBar, server);
  context.subscriptions.push(server.onDidChangeClient((client) => statusBar.setClient(client)));
  context.subscriptions.push(server.onDidRunTask(() => void statusBar.refresh()));
  registerCommands(context, server, statusBar, keys);
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(SECTION)) return;
      if (needsRestart((section) => e.affectsConfiguration(section))) {
        void server?.restart();
      } else {
        // Push the new section; the server re-merges it without a restart.
        void server?.running?.sendNotification(DidChangeConfigurationNotification.type, {
          settings: { [SECTION]: initializationOptions() },
        });
      }
    }),
  );
  await server.start();
}

export async function deactivate(): Promise<void> {
  await server?.stop();
}
