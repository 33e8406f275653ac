// Pure task logic shared by the commands and the status bar: the shapes of the server's
// lspAgent/* messages (docs/architecture.md, "The LSP surface") and how they are shown.

export interface Position {
  line: number;
  character: number;
}
export interface Range {
  start: Position;
  end: Position;
}

export type Preset = 'fix' | 'simplify' | 'typeHints' | 'docstrings' | 'extractFunction';

/** The single argument of the `lspAgent.runTask` command. */
export interface RunTaskArgument {
  uri: string;
  version: number | null;
  range: Range | null;
  diagnostics: unknown[];
  preset: Preset | null;
  instruction: string | null;
  needsInstruction?: boolean;
}

export interface TaskInfo {
  id: string;
  state: string;
  title: string;
  progress?: number | null; // percent, 0-100
  message?: string | null;
  tokens?: number;
  cachedTokens?: number;
  createdAt?: string;
  files?: string[];
}

export const RUN_TASK = 'lspAgent.runTask';
export const CANCEL_TASK = 'lspAgent.cancelTask';
export const APPLY_TASK = 'lspAgent.applyTask';
export const TASKS_REQUEST = 'lspAgent/tasks';
export const CONTEXT_REQUEST = 'lspAgent/context';

const ACTIVE = new Set(['queued', 'running']);

export const isActive = (task: TaskInfo): boolean => ACTIVE.has(task.state);
/** A finished result still in the journal that the user may apply (again, if the editor declined it). */
export const canApply = (task: TaskInfo): boolean => task.state === 'succeeded' || task.state === 'rejected';

export function buildRunTaskArgument(
  uri: string,
  version: number | null,
  range: Range | null,
  instruction: string,
): RunTaskArgument {
  return { uri, version, range, diagnostics: [], preset: null, instruction };
}

/** True when a runTask argument must get an instruction from the user before it is sent. */
export function wantsInstruction(arg: unknown): arg is RunTaskArgument {
  if (typeof arg !== 'object' || arg === null) return false;
  const a = arg as Partial<RunTaskArgument>;
  return a.needsInstruction === true && (typeof a.instruction !== 'string' || a.instruction === '');
}

/** The argument as sent once the user typed `instruction`: the client-only flag removed. */
export function withInstruction(arg: RunTaskArgument, instruction: string): RunTaskArgument {
  const { needsInstruction: _drop, ...rest } = arg;
  return { ...rest, instruction };
}

export function parseTasks(result: unknown): TaskInfo[] {
  const tasks = (result as { tasks?: unknown } | null)?.tasks;
  if (!Array.isArray(tasks)) return [];
  return tasks.filter(
    (t): t is TaskInfo =>
      typeof t === 'object' && t !== null && typeof t.id === 'string' && typeof t.state === 'string',
  );
}

export function statusText(tasks: TaskInfo[]): string {
  const running = tasks.filter(isActive).length;
  if (running === 0) return '$(sparkle) LSP Agent';
  return `$(sync~spin) LSP Agent: ${running} task${running === 1 ? '' : 's'}`;
}

export interface TaskPickItem {
  label: string;
  description: string;
  detail: string;
  task: TaskInfo;
}

function formatTokens(n: number | undefined): string {
  if (!n) return '0';
  return n >= 10_000 ? `${Math.round(n / 1000)}k` : String(n);
}

export function taskPickItem(task: TaskInfo): TaskPickItem {
  const action = canApply(task) ? ' — select to apply' : isActive(task) ? ' — select to cancel' : '';
  // lspAgent/tasks sends progress as a whole percentage, 0-100; it moves only as files finish,
  // so a "0%" would read as stuck while the agents work: the message says where the task is.
  const percent = typeof task.progress === 'number' ? Math.min(100, Math.round(task.progress)) : 0;
  const pct = percent > 0 ? ` ${percent}%` : '';
  const files = task.files?.length ? `${task.files.join(', ')} · ` : '';
  return {
    label: task.title || task.id,
    description: `${task.state}${isActive(task) ? pct : ''}${action}`,
    detail:
      `${task.id} · ${files}${formatTokens(task.tokens)} tokens ` +
      `(${formatTokens(task.cachedTokens)} cached)${task.message ? ` · ${task.message}` : ''}`,
    task,
  };
}

interface ManifestFile {
  path?: string;
  tier?: string;
  tokens?: number;
  section?: string;
  reason?: string;
}

/** The lspAgent/context manifest as a Markdown document. */
export function manifestMarkdown(manifest: unknown): string {
  const m = (manifest ?? {}) as {
    files?: ManifestFile[];
    budget?: number;
    prefix_tokens?: number;
    tail_tokens?: number;
    prefix_hash?: string;
  };
  const lines = [
    '# lsp-agent context',
    '',
    `budget ${m.budget ?? '?'} tokens · prefix ${m.prefix_tokens ?? '?'} · ` +
      `tail ${m.tail_tokens ?? '?'} · prefix hash \`${m.prefix_hash ?? '?'}\``,
    '',
    '| tier | tokens | section | path | reason |',
    '| --- | ---: | --- | --- | --- |',
  ];
  for (const f of m.files ?? []) {
    lines.push(
      `| ${f.tier ?? ''} | ${f.tokens ?? ''} | ${f.section ?? ''} | ${f.path ?? ''} | ${f.reason ?? ''} |`,
    );
  }
  return lines.join('\n') + '\n';
}

/** What the user is told after "Cancel Task": the lspAgent.cancelTask result for `task`. */
export function cancelOutcome(task: TaskInfo, result: unknown): { ok: boolean; text: string } {
  const name = task.title || task.id;
  if ((result as { cancelled?: unknown } | null)?.cancelled === true) {
    return { ok: true, text: `LSP Agent: cancelled "${name}"; nothing was applied` };
  }
  return { ok: false, text: `LSP Agent: "${name}" is not running in this server any more.` };
}
