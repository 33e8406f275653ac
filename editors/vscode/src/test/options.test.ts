import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  API_KEY_ENV,
  needsRestart,
  resolveServerCommand,
  serverEnvironment,
  toInitializationOptions,
} from '../common/options';

test('only settings the user set reach the server', () => {
  assert.deepEqual(
    toInitializationOptions({
      provider: '',
      baseUrl: '',
      model: '',
      models: {},
      contextBudget: 0,
      ignore: [],
      budgets: {},
    }),
    {},
  );
});

test('settings are converted and invalid values dropped', () => {
  const out = toInitializationOptions({
    provider: 'deepseek',
    baseUrl: ' http://127.0.0.1:9/v1 ',
    model: 'deepseek-v4-pro',
    models: { coder: 'flash', painter: 'x', reviewer: 3 },
    contextBudget: 120000.7,
    ignore: ['dist/', 7, ''],
    confirmEdits: true,
    budgets: { maxSteps: 5, maxTokens: -1, maxSeconds: 'slow' },
  });
  assert.deepEqual(out, {
    provider: 'deepseek',
    baseUrl: 'http://127.0.0.1:9/v1',
    model: { model: 'deepseek-v4-pro' },
    models: { coder: 'flash' },
    contextBudget: 120000,
    ignore: ['dist/'],
    confirmEdits: true,
    budgets: { maxSteps: 5 },
  });
});

test('server command: explicit command, then interpreter, then lsp-agent on PATH', () => {
  assert.deepEqual(resolveServerCommand({ server: { command: ['/opt/la', 'serve', '--x'] } }), {
    command: '/opt/la',
    args: ['serve', '--x'],
  });
  assert.deepEqual(resolveServerCommand({ server: { command: [], interpreter: '/venv/bin/python' } }), {
    command: '/venv/bin/python',
    args: ['-m', 'lsp_agent', 'serve'],
  });
  assert.deepEqual(resolveServerCommand({ server: { command: ['', 'serve'] } }), {
    command: 'lsp-agent',
    args: ['serve'],
  });
});

test('the API key comes from SecretStorage, never from server.env', () => {
  const env = serverEnvironment(
    { PATH: '/bin', HOME: undefined },
    {
      server: {
        env: { LSP_AGENT_BASE_URL: 'http://x', OPENAI_API_KEY: 'leak', N: 3 },
        userEnv: { LSP_AGENT_BASE_URL: 'http://x' },
      },
    },
    'sk-secret',
  );
  assert.equal(env.PATH, '/bin');
  assert.equal(env.LSP_AGENT_BASE_URL, 'http://x');
  assert.equal(env[API_KEY_ENV], 'sk-secret');
  assert.ok(!('OPENAI_API_KEY' in env));
  assert.ok(!('HOME' in env));
  assert.ok(!('N' in env));
});

test('without a stored key the environment keeps its own', () => {
  const env = serverEnvironment({ [API_KEY_ENV]: 'from-shell' }, {}, undefined);
  assert.equal(env[API_KEY_ENV], 'from-shell');
});

test('only server settings need a restart', () => {
  assert.equal(needsRestart((s) => s === 'lspAgent.server'), true);
  assert.equal(needsRestart((s) => s === 'lspAgent.model'), false);
});

test('a workspace cannot point the server elsewhere through server.env', () => {
  // server.env merged from user + .vscode/settings.json; only the user's steering values count.
  const env = serverEnvironment(
    {},
    {
      server: {
        env: { LSP_AGENT_BASE_URL: 'https://collector.example/v1', LSP_AGENT_PROVIDER: 'local', X: '1' },
        userEnv: { X: '1' },
      },
    },
    undefined,
  );
  assert.ok(!('LSP_AGENT_BASE_URL' in env));
  assert.ok(!('LSP_AGENT_PROVIDER' in env));
  assert.equal(env.X, '1');
});
