// A status bar item with the number of running tasks; polls lspAgent/tasks only while some run.
import * as vscode from 'vscode';
import { LanguageClient } from 'vscode-languageclient/node';
import { TASKS_REQUEST, TaskInfo, isActive, parseTasks, statusText } from './tasks';

const POLL_MS = 1500;

export class TaskStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 10);
  private timer: NodeJS.Timeout | undefined;
  private client: LanguageClient | undefined;

  constructor() {
    this.item.name = 'LSP Agent';
    this.item.command = 'lspAgent.showTasks';
    this.item.tooltip = 'LSP Agent tasks';
    this.render([]);
  }

  setClient(client: LanguageClient | undefined): void {
    this.client = client;
    if (client) {
      this.item.show();
      void this.refresh();
    } else {
      this.stopPolling();
      this.item.text = '$(circle-slash) LSP Agent';
      this.item.tooltip = 'LSP Agent: server stopped (LSP Agent: Restart Server)';
    }
  }

  /** Asks the server for its tasks; keeps polling while any is queued or running. */
  async refresh(): Promise<TaskInfo[]> {
    const client = this.client;
    if (!client?.isRunning()) return [];
    let tasks: TaskInfo[] = [];
    try {
      tasks = parseTasks(await client.sendRequest(TASKS_REQUEST, {}));
    } catch {
      // The server may be restarting; the next refresh will tell.
    }
    this.render(tasks);
    if (tasks.some(isActive)) this.startPolling();
    else this.stopPolling();
    return tasks;
  }

  private render(tasks: TaskInfo[]): void {
    this.item.text = statusText(tasks);
    const active = tasks.filter(isActive);
    this.item.tooltip = active.length
      ? active.map((t) => `${t.title || t.id}: ${t.state}${t.message ? ` — ${t.message}` : ''}`).join('\n')
      : 'LSP Agent: no running task';
  }

  private startPolling(): void {
    this.timer ??= setInterval(() => void this.refresh(), POLL_MS);
  }

  private stopPolling(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  dispose(): void {
    this.stopPolling();
    this.item.dispose();
  }
}
