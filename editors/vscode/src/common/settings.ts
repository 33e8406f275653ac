// Reads the `lspAgent` settings from VS Code; the pure conversions live in options.ts.
import * as vscode from 'vscode';
import { InitializationOptions, RawSettings, ServerCommand, resolveServerCommand, toInitializationOptions } from './options';

export const SECTION = 'lspAgent';

export function readRawSettings(scope?: vscode.ConfigurationScope): RawSettings {
  const config = vscode.workspace.getConfiguration(SECTION, scope);
  return {
    server: {
      command: config.get('server.command'),
      interpreter: config.get('server.interpreter'),
      env: config.get('server.env'),
      userEnv: config.inspect('server.env')?.globalValue,
    },
    provider: config.get('provider'),
    baseUrl: config.get('baseUrl'),
    model: config.get('model'),
    models: config.get('models'),
    contextBudget: config.get('contextBudget'),
    ignore: config.get('ignore'),
    confirmEdits: config.get('confirmEdits'),
    budgets: config.get('budgets'),
  };
}

export function initializationOptions(scope?: vscode.ConfigurationScope): InitializationOptions {
  return toInitializationOptions(readRawSettings(scope));
}

export function serverCommand(): ServerCommand {
  return resolveServerCommand(readRawSettings());
}
