// Pure functions from the `lspAgent` settings to what the server receives. No `vscode` import,
// so the unit tests run in plain Node.

/** The `lspAgent` settings as VS Code returns them (any field may be missing or mistyped). */
export interface RawSettings {
  /** `userEnv`: `server.env` as the user settings hold it (without workspace values). */
  server?: { command?: unknown; interpreter?: unknown; env?: unknown; userEnv?: unknown };
  provider?: unknown;
  baseUrl?: unknown;
  model?: unknown;
  models?: unknown;
  contextBudget?: unknown;
  ignore?: unknown;
  confirmEdits?: unknown;
  budgets?: unknown;
}

/** What goes to the server as initializationOptions / the `lspAgent` configuration section. */
export interface InitializationOptions {
  provider?: string;
  baseUrl?: string;
  /** Nested form of `lspAgent.model`: lsp_agent.config reads a flat string `model` as unknown. */
  model?: { model: string };
  models?: Record<string, string>;
  contextBudget?: number;
  ignore?: string[];
  confirmEdits?: boolean;
  budgets?: Record<string, number>;
}

export interface ServerCommand {
  command: string;
  args: string[];
}

// 'synthesizer' is retired (the merge is code): still passed on so the server warns about it.
export const ROLES = ['researcher', 'coder', 'reviewer', 'synthesizer'] as const;
export const API_KEY_ENV = 'LSP_AGENT_API_KEY';

const nonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

function stringMap(v: unknown, allowed?: readonly string[]): Record<string, string> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(v)) {
    if (nonEmptyString(value) && (!allowed || allowed.includes(key))) out[key] = value;
  }
  return Object.keys(out).length ? out : undefined;
}

function numberMap(v: unknown): Record<string, number> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(v)) {
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) out[key] = value;
  }
  return Object.keys(out).length ? out : undefined;
}

/**
 * Only settings the user actually set are sent: the server merges them over its own sources
 * (config files, environment), so sending a default here would hide the user's config.toml.
 */
export function toInitializationOptions(raw: RawSettings): InitializationOptions {
  const out: InitializationOptions = {};
  if (nonEmptyString(raw.provider)) out.provider = raw.provider;
  if (nonEmptyString(raw.baseUrl)) out.baseUrl = raw.baseUrl.trim();
  if (nonEmptyString(raw.model)) out.model = { model: raw.model.trim() };
  const models = stringMap(raw.models, ROLES);
  if (models) out.models = models;
  if (typeof raw.contextBudget === 'number' && raw.contextBudget > 0) {
    out.contextBudget = Math.floor(raw.contextBudget);
  }
  if (Array.isArray(raw.ignore)) {
    const ignore = raw.ignore.filter(nonEmptyString);
    if (ignore.length) out.ignore = ignore;
  }
  if (typeof raw.confirmEdits === 'boolean') out.confirmEdits = raw.confirmEdits;
  const budgets = numberMap(raw.budgets);
  if (budgets) out.budgets = budgets;
  return out;
}

/** `server.command` wins; else `<interpreter> -m lsp_agent serve`; else `lsp-agent serve`. */
export function resolveServerCommand(raw: RawSettings): ServerCommand {
  const command = raw.server?.command;
  if (Array.isArray(command) && command.length > 0 && command.every(nonEmptyString)) {
    return { command: command[0], args: command.slice(1) };
  }
  const interpreter = raw.server?.interpreter;
  if (nonEmptyString(interpreter)) {
    return { command: interpreter, args: ['-m', 'lsp_agent', 'serve'] };
  }
  return { command: 'lsp-agent', args: ['serve'] };
}

/**
 * Variables that decide where requests go (lsp_agent/config.py STEERING): a workspace's
 * `.vscode/settings.json` must not set them through `server.env`, so they are taken from the
 * user's own `server.env` only.
 */
export const STEERING_ENV = ['LSP_AGENT_BASE_URL', 'LSP_AGENT_PROVIDER'] as const;

/**
 * The server's environment: the editor's own, then `server.env`, then the API key from
 * SecretStorage. A key typed into server.env is dropped so secrets never come from settings.json;
 * a STEERING_ENV variable counts only from the user settings.
 */
export function serverEnvironment(
  base: Record<string, string | undefined>,
  raw: RawSettings,
  apiKey: string | undefined,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) if (value !== undefined) env[key] = value;
  const extra = stringMap(raw.server?.env) ?? {};
  const userEnv = stringMap(raw.server?.userEnv) ?? {};
  for (const [key, value] of Object.entries(extra)) {
    if (/API_KEY$/.test(key)) continue;
    if ((STEERING_ENV as readonly string[]).includes(key)) {
      if (userEnv[key] !== undefined) env[key] = userEnv[key];
      continue;
    }
    env[key] = value;
  }
  if (apiKey) env[API_KEY_ENV] = apiKey;
  return env;
}

/** Settings whose change needs a server restart (the rest go through didChangeConfiguration). */
export function needsRestart(changedSection: (section: string) => boolean): boolean {
  return ['lspAgent.server'].some(changedSection);
}
