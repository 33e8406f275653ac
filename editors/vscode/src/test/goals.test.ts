import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildRunGoalArgument, canApplyRun, parseRuns, runPickItem } from '../common/goals';

test('the goal is sent trimmed with the folder it runs in', () => {
  assert.deepEqual(buildRunGoalArgument('  add rate limiting \n', 'file:///w'), {
    goal: 'add rate limiting',
    uri: 'file:///w',
  });
});

test('runs are read from lspAgent/tasks and malformed entries dropped', () => {
  const runs = parseRuns({ tasks: [], runs: [{ runId: 'g-1', goal: 'G', state: 'stuck' }, { goal: 'x' }, 3] });
  assert.deepEqual(runs.map((r) => r.runId), ['g-1']);
  assert.deepEqual(parseRuns({ tasks: [] }), []);
  assert.deepEqual(parseRuns(null), []);
});

test('only a stopped run offers its diff, and the pick item says where it stands', () => {
  const run = { runId: 'g-1', goal: 'Grow it\nmore', state: 'budget_stopped', done: 3, total: 9, branch: 'lsp-agent/g-1' };
  assert.equal(canApplyRun(run), true);
  assert.equal(canApplyRun({ ...run, state: 'running' }), false);
  const item = runPickItem(run);
  assert.equal(item.label, 'Grow it');
  assert.equal(item.description, 'budget_stopped · 3/9 steps');
  assert.equal(item.detail, 'lsp-agent/g-1');
});
