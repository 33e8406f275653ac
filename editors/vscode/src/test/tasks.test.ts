import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  buildRunTaskArgument,
  canApply,
  cancelOutcome,
  manifestMarkdown,
  parseTasks,
  statusText,
  taskPickItem,
  TaskInfo,
  wantsInstruction,
  withInstruction,
} from '../common/tasks';

const task = (over: Partial<TaskInfo>): TaskInfo => ({ id: 't-000000000001', state: 'running', title: 'T', ...over });

test('a code action with needsInstruction and no instruction asks the user', () => {
  const arg = { ...buildRunTaskArgument('file:///a.py', 3, null, ''), instruction: null, needsInstruction: true };
  assert.equal(wantsInstruction(arg), true);
  assert.equal(wantsInstruction({ ...arg, instruction: 'do it' }), false);
  assert.equal(wantsInstruction({ ...arg, needsInstruction: false }), false);
  assert.equal(wantsInstruction(undefined), false);
  assert.equal(wantsInstruction('x'), false);
});

test('the instruction replaces null and the client-only flag is dropped', () => {
  const arg = { ...buildRunTaskArgument('file:///a.py', 3, null, ''), instruction: null, needsInstruction: true };
  const sent = withInstruction(arg, 'add type hints');
  assert.equal(sent.instruction, 'add type hints');
  assert.ok(!('needsInstruction' in sent));
  assert.equal(sent.uri, 'file:///a.py');
  assert.equal(sent.version, 3);
  assert.equal(arg.needsInstruction, true, 'the original argument is not mutated');
});

test('runTask argument has the documented shape', () => {
  const range = { start: { line: 1, character: 0 }, end: { line: 2, character: 4 } };
  assert.deepEqual(buildRunTaskArgument('file:///w/m.py', 7, range, 'simplify'), {
    uri: 'file:///w/m.py',
    version: 7,
    range,
    diagnostics: [],
    preset: null,
    instruction: 'simplify',
  });
});

test('parseTasks keeps well-formed tasks only', () => {
  assert.deepEqual(parseTasks(null), []);
  assert.deepEqual(parseTasks({ tasks: 'x' }), []);
  const parsed = parseTasks({ tasks: [task({}), { id: 3 }, null, task({ id: 't-2', state: 'applied' })] });
  assert.deepEqual(parsed.map((t) => t.id), ['t-000000000001', 't-2']);
});

test('status text counts queued and running tasks', () => {
  assert.match(statusText([]), /LSP Agent$/);
  assert.match(statusText([task({}), task({ state: 'applied' })]), /1 task$/);
  assert.match(statusText([task({}), task({ state: 'queued' })]), /2 tasks$/);
});

test('quick pick items say what selecting does', () => {
  assert.equal(canApply(task({ state: 'succeeded' })), true);
  assert.equal(canApply(task({ state: 'rejected' })), true);
  assert.equal(canApply(task({ state: 'applied' })), false);
  assert.equal(canApply(task({ state: 'failed' })), false);
  assert.match(taskPickItem(task({ state: 'succeeded' })).description, /apply/);
  assert.match(taskPickItem(task({ state: 'running', progress: 50 })).description, /running 50% — select to cancel/);
  assert.match(taskPickItem(task({ state: 'running', progress: 100 })).description, /running 100% —/);
  assert.equal(taskPickItem(task({ state: 'running', progress: 0 })).description, 'running — select to cancel');
  const item = taskPickItem(task({ state: 'failed', tokens: 123456, cachedTokens: 100000, files: ['a.py'], message: 'boom' }));
  assert.equal(item.description, 'failed');
  assert.equal(item.detail, 't-000000000001 · a.py · 123k tokens (100k cached) · boom');
});

test('manifest renders as a Markdown table, one row per file', () => {
  const md = manifestMarkdown({
    budget: 1000,
    prefix_tokens: 600,
    tail_tokens: 50,
    prefix_hash: 'abc',
    files: [
      { path: 'a.py', tier: 'full', tokens: 500, section: 'prefix', reason: 'focus' },
      { path: 'b.py', tier: 'signatures', tokens: 100, section: 'prefix', reason: 'referenced' },
    ],
  });
  const rows = md.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| tier') && !l.startsWith('| ---'));
  assert.equal(rows.length, 2);
  assert.match(md, /budget 1000 tokens · prefix 600 · tail 50 · prefix hash `abc`/);
  assert.equal(rows[1], '| signatures | 100 | prefix | b.py | referenced |');
  assert.match(manifestMarkdown(null), /budget \? tokens/);
});

test('cancel outcome says whether the task was stopped', () => {
  const t = task({ title: 'Annotate sub' });
  assert.deepEqual(cancelOutcome(t, { taskId: t.id, cancelled: true }), {
    ok: true,
    text: 'LSP Agent: cancelled "Annotate sub"; nothing was applied',
  });
  assert.equal(cancelOutcome(t, { taskId: t.id, cancelled: false }).ok, false);
  assert.equal(cancelOutcome(t, undefined).ok, false);
  assert.match(cancelOutcome(task({ title: '' }), null).text, /t-000000000001/);
});
