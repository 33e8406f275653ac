// Starts, stops and restarts `lsp-agent serve` through vscode-languageclient.
import * as vscode from 'vscode';
import {
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
  TransportKind,
} from 'vscode-languageclient/node';
import { serverEnvironment } from './options';
import { ApiKeyStore } from './secrets';
import { SECTION, initializationOptions, readRawSettings, serverCommand } from './settings';
import { RUN_TASK, wantsInstruction, withInstruction } from './tasks';

export class ServerManager implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<void> | undefined;
  private readonly changed = new vscode.EventEmitter<LanguageClient | undefined>();
  /** Fires after every start and stop, with the running client or undefined. */
  readonly onDidChangeClient = this.changed.event;
  private readonly ranTask = new vscode.EventEmitter<void>();
  /** Fires after a code action's lspAgent.runTask returned, so the status bar counts the task. */
  readonly onDidRunTask = this.ranTask.event;

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly traceOutput: vscode.OutputChannel,
    private readonly keys: ApiKeyStore,
  ) {}

  get running(): LanguageClient | undefined {
    return this.client?.isRunning() ? this.client : undefined;
  }

  async start(): Promise<void> {
    if (this.starting) return this.starting;
    this.starting = this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const { command, args } = serverCommand();
    const env = serverEnvironment(process.env, readRawSettings(), await this.keys.get());
    const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const serverOptions: ServerOptions = {
      command,
      args,
      transport: TransportKind.stdio,
      options: { env, cwd },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }],
      outputChannel: this.output,
      traceOutputChannel: this.traceOutput,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationOptions: initializationOptions(),
      middleware: {
        // Code actions for a free instruction carry needsInstruction: ask for it here.
        executeCommand: async (cmd, cmdArgs, next) => {
          if (cmd !== RUN_TASK) return next(cmd, cmdArgs);
          let args = cmdArgs;
          if (wantsInstruction(cmdArgs[0])) {
            const instruction = await vscode.window.showInputBox({
              title: 'LSP Agent',
              prompt: 'What should the agent do?',
              ignoreFocusOut: true,
            });
            if (!instruction) return undefined;
            args = [withInstruction(cmdArgs[0], instruction)];
          }
          try {
            return await next(cmd, args);
          } finally {
            this.ranTask.fire();
          }
        },
        workspace: {
          // The server asks for the `lspAgent` section: send only what it understands.
          configuration: async (params, token, next) => {
            const result = await next(params, token);
            if (!Array.isArray(result)) return result;
            return params.items.map((item, i) =>
              item.section === SECTION
                ? initializationOptions(item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined)
                : result[i],
            );
          },
        },
      },
    };
    this.output.info(`starting ${command} ${args.join(' ')}`);
    const client = new LanguageClient('lspAgent', 'LSP Agent', serverOptions, clientOptions);
    this.client = client;
    try {
      await client.start();
    } catch (err) {
      this.output.error(`the server did not start: ${String(err)}`);
      void vscode.window.showErrorMessage(
        `LSP Agent: cannot start "${command}". Set lspAgent.server.command or ` +
          'lspAgent.server.interpreter. Details in the output channel.',
      );
      this.client = undefined;
      this.changed.fire(undefined);
      return;
    }
    this.changed.fire(client);
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) {
      try {
        await client.stop();
      } catch (err) {
        this.output.warn(`stopping the server: ${String(err)}`);
      }
    }
    this.changed.fire(undefined);
  }

  async restart(): Promise<void> {
    await this.starting;
    await this.stop();
    await this.start();
  }

  dispose(): void {
    void this.stop();
    this.changed.dispose();
    this.ranTask.dispose();
  }
}
