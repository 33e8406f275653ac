// Goal runs as the extension sees them: the server's commands and its lspAgent/tasks "runs".
// Pure (no vscode import), so it is unit-tested in plain Node.

export const RUN_GOAL = 'lspAgent.runGoal';
export const APPLY_GOAL = 'lspAgent.applyGoal';

export interface GoalRun {
  runId: string;
  goal: string;
  state: string;
  reason?: string;
  branch?: string;
  done?: number;
  total?: number;
}

export interface RunGoalArgument {
  goal: string;
  uri: string | null;
}

export function buildRunGoalArgument(goal: string, folderUri: string | null): RunGoalArgument {
  return { goal: goal.trim(), uri: folderUri };
}

export function parseRuns(result: unknown): GoalRun[] {
  const runs = (result as { runs?: unknown } | null)?.runs;
  if (!Array.isArray(runs)) return [];
  return runs.filter(
    (r): r is GoalRun =>
      typeof r === 'object' && r !== null && typeof r.runId === 'string' && typeof r.state === 'string',
  );
}

// A run's diff can be brought in once it has stopped, whatever the reason: the branch holds
// every finished step.
export const canApplyRun = (run: GoalRun): boolean => !['running', 'planning'].includes(run.state);

export interface RunPickItem {
  label: string;
  description: string;
  detail: string;
  run: GoalRun;
}

export function runPickItem(run: GoalRun): RunPickItem {
  const firstLine = run.goal.split('\n')[0];
  return {
    label: firstLine.length > 60 ? `${firstLine.slice(0, 60)}…` : firstLine,
    description: `${run.state} · ${run.done ?? 0}/${run.total ?? 0} steps`,
    detail: [run.branch, run.reason].filter(Boolean).join(' — '),
    run,
  };
}
