// The API key lives in SecretStorage (the OS keychain where there is one), never in settings.
import * as vscode from 'vscode';

const KEY = 'lspAgent.apiKey';

export class ApiKeyStore {
  constructor(private readonly secrets: vscode.SecretStorage) {}

  get(): Thenable<string | undefined> {
    return this.secrets.get(KEY);
  }

  async prompt(): Promise<boolean> {
    const value = await vscode.window.showInputBox({
      title: 'LSP Agent: API key',
      prompt: 'Stored in VS Code SecretStorage and passed to the server as LSP_AGENT_API_KEY',
      password: true,
      ignoreFocusOut: true,
    });
    if (value === undefined || value.trim() === '') return false;
    await this.secrets.store(KEY, value.trim());
    return true;
  }

  clear(): Thenable<void> {
    return this.secrets.delete(KEY);
  }

  onDidChange(listener: () => void): vscode.Disposable {
    return this.secrets.onDidChange((e) => {
      if (e.key === KEY) listener();
    });
  }
}
