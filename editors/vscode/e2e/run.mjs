// End-to-end test of the extension in real VS Code: code-server 4.100.3 (VS Code 1.100.3) driven
// by Debian's headless Chromium through playwright-core. Installs the .vsix into a throwaway
// profile, opens a workspace file, runs an lsp-agent code action from the Quick Fix menu, answers
// the instruction prompt, and waits for the document text the scripted model's task produces.
//
// node e2e/run.mjs --config e2e.json      (tests/editors/test_vscode.py writes the config)
// config: {codeServer, chromium, vsix, workspace, serverCommand: [..], env: {..}, timeoutMs,
//          artifacts (dir), scenarios: [{file, expect (path), via: 'codeAction'|'command',
//          action (code action title part), instruction, selectLine: n|null}],
//          apiKey (optional: stored with "LSP Agent: Set API Key" before the scenarios),
//          cancel (optional: {file, action, instruction, selectLine, delayMs, progressText}: a slow task
//          cancelled with "LSP Agent: Cancel Task" after the scenarios),
//          goal (optional: {file, goal, expect}: "LSP Agent: Run a Goal…" with the file open, the
//          window progress watched until the run's end message, then "LSP Agent: Apply a Goal
//          Run…" and the file's expected text)}
// Scenarios run in order in one window: each opens its file, selects, starts a task and waits.
// Prints one JSON report line on stdout; exits 0 on success, 1 on failure.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const configPath = process.argv[process.argv.indexOf('--config') + 1];
const cfg = JSON.parse(readFileSync(configPath, 'utf8'));
const timeoutMs = cfg.timeoutMs ?? 120_000;
const report = { steps: [], started: Date.now() };
const step = (name) => {
  report.steps.push(name);
  console.error(`vscode e2e: ${name} (${((Date.now() - report.started) / 1000).toFixed(1)} s)`);
};

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitForHttp(url, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`code-server did not answer on ${url} within ${ms} ms`);
}

// Monaco renders spaces as U+00A0 and only the visible lines; the test files are small.
async function editorText(page) {
  const lines = await page.locator('.editor-instance .view-lines .view-line').evaluateAll((els) =>
    els
      .map((el) => ({ top: parseFloat(el.style.top || '0'), text: el.textContent ?? '' }))
      .sort((a, b) => a.top - b.top)
      .map((l) => l.text.replace(/\u00a0/g, ' ')),
  );
  return lines.join('\n');
}

async function runCommand(page, title) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`>${title}`);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor();
  await page.keyboard.press('Enter');
}

async function openFile(page, file) {
  await page.keyboard.press('Control+P');
  await page.locator('.quick-input-widget input').fill(file);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: file.split('/').pop() }).first().waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.editor-instance .view-lines').waitFor();
  await page.locator('.tab.active', { hasText: file.split('/').pop() }).waitFor();
}

async function selectLine(page, line) {
  await page.locator('.editor-instance .view-lines').click();
  if (typeof line === 'number') {
    await runCommand(page, 'Go to Line/Column...');
    await page.keyboard.type(String(line));
    await page.keyboard.press('Enter');
    await page.keyboard.press('Home');
    await page.keyboard.press('Shift+End');
  } else {
    await page.keyboard.press('Control+A');
  }
}

// Opens the Quick Fix menu (Ctrl+.) and runs the entry titled like `action`; returns the menu.
async function chooseCodeAction(page, action) {
  const item = page.locator('.action-widget .monaco-list-row', { hasText: action }).first();
  const rows = page.locator('.action-widget .monaco-list-row');
  const deadline = Date.now() + 30_000;
  // Retry: the first request may race the server's document sync.
  for (;;) {
    await page.keyboard.press('Control+.');
    try {
      await item.waitFor({ timeout: 3_000 });
      break;
    } catch {
      const menu = await rows.allTextContents();
      await page.keyboard.press('Escape');
      if (Date.now() > deadline) throw new Error(`no code action "${action}" in ${JSON.stringify(menu)}`);
    }
  }
  const menu = await rows.allTextContents();
  // The menu sits under a pointer-blocking overlay: choose with the keyboard, as people do.
  const focused = page.locator('.action-widget .monaco-list-row.focused');
  for (let i = 0; i < 20 && !((await focused.textContent()) ?? '').includes(action); i++) {
    await page.keyboard.press('ArrowDown');
  }
  await page.keyboard.press('Enter');
  return menu;
}

// Monaco shows a final newline as an empty last line, so the joined lines equal the file.
async function waitForText(page, expected) {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < deadline) {
    text = await editorText(page);
    if (text === expected) return text;
    await page.waitForTimeout(250);
  }
  throw new Error(`editor text after ${timeoutMs} ms:\n${text}`);
}

// The status bar's text, one entry per item, icons left out (codicons render as empty spans).
const statusItems = (page) => page.locator('.statusbar-item').allTextContents();

// Polls the status bar until one item satisfies `test`; returns that item's text.
async function waitForStatus(page, test, what, ms = 30_000) {
  const deadline = Date.now() + ms;
  let items = [];
  while (Date.now() < deadline) {
    items = (await statusItems(page)).map((t) => t.trim());
    const hit = items.find(test);
    if (hit !== undefined) return hit;
    await page.waitForTimeout(100);
  }
  throw new Error(`status bar never showed ${what}; it shows ${JSON.stringify(items)}`);
}

// Starts a task whose coder the scripted model answers only after `delayMs`, checks the progress
// the window shows while it runs, cancels it with "LSP Agent: Cancel Task" and checks, after the
// model's delay has passed, that the status bar is idle again and the document is unchanged.
async function cancelScenario(page, sc) {
  const rep = { file: sc.file };
  const original = readFileSync(join(cfg.workspace, sc.file), 'utf8');
  // Through a code action: the status bar learns of the task from the executeCommand middleware.
  step(`cancel: ${sc.file}: open, select, code action "${sc.action}"`);
  await openFile(page, sc.file);
  await selectLine(page, sc.selectLine);
  await chooseCodeAction(page, sc.action);
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 20_000 });
  await input.fill(sc.instruction);
  await page.keyboard.press('Enter');
  const started = Date.now();
  step('cancel: wait for the running task in the status bar and the progress');
  rep.running = await waitForStatus(page, (t) => /^LSP Agent: 1 task$/.test(t), '"LSP Agent: 1 task"');
  // The work-done progress (ProgressLocation.Window) reaches the coder, which the model delays.
  rep.progress = await waitForStatus(page, (t) => t.includes(sc.progressText), `"${sc.progressText}"`);
  rep.statusWhileRunning = (await statusItems(page)).map((t) => t.trim()).filter(Boolean);
  if (cfg.artifacts) await page.screenshot({ path: join(cfg.artifacts, 'vscode-e2e-progress.png') });

  step('cancel: LSP Agent: Cancel Task');
  await runCommand(page, 'LSP Agent: Cancel Task');
  const rows = page.locator('.quick-input-list .monaco-list-row');
  await rows.first().waitFor({ timeout: 20_000 });
  rep.pick = await rows.allTextContents();
  if (cfg.artifacts) await page.screenshot({ path: join(cfg.artifacts, 'vscode-e2e-cancel-pick.png') });
  await page.keyboard.press('Enter');
  rep.message = await waitForStatus(page, (t) => t.startsWith('LSP Agent: cancelled'), 'the cancel message');

  step('cancel: wait for the status bar to go idle');
  rep.idle = await waitForStatus(page, (t) => t === 'LSP Agent', 'the idle "LSP Agent"');
  rep.cancelledAfterMs = Date.now() - started;
  // Had the task survived the cancel, its edit would land once the model answers.
  const wait = started + sc.delayMs + 2_000 - Date.now();
  if (wait > 0) await page.waitForTimeout(wait);
  rep.statusAfter = (await statusItems(page)).map((t) => t.trim()).filter(Boolean);
  rep.text = await editorText(page);
  rep.unchanged = rep.text === original;
  return rep;
}

// Runs a goal from the palette with `sc.file` open, records every step its progress shows
// (status bar or notification) until the server's end message, then applies the run from "Apply a Goal Run…" and waits
// for the file's expected text (the run's final diff, one workspace/applyEdit).
async function goalScenario(page, sc) {
  const rep = { file: sc.file, progress: [], statusSeen: [] };
  step(`goal: ${sc.file}: open`);
  await openFile(page, sc.file);
  rep.textBefore = await editorText(page);
  step('goal: LSP Agent: Run a Goal…');
  await runCommand(page, 'LSP Agent: Run a Goal…');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 20_000 });
  await input.fill(sc.goal);
  await page.keyboard.press('Enter');
  step('goal: watch the progress until the end message');
  const notice = page.locator('.notification-list-item-message', { hasText: '(branch lsp-agent/' });
  const deadline = Date.now() + timeoutMs;
  const toasts = page.locator('.notification-list-item-message');
  while ((await notice.count()) === 0) {
    // A cancellable server progress is a notification (vscode-languageclient); a plain one is in
    // the status bar: look at both.
    const shown = [...(await statusItems(page)), ...(await toasts.allTextContents())];
    for (const item of shown.map((t) => t.trim())) {
      if (item.includes('step ') && !rep.progress.includes(item)) rep.progress.push(item);
      if (item && !rep.statusSeen.includes(item)) rep.statusSeen.push(item);
    }
    if (Date.now() > deadline) throw new Error(`no end message within ${timeoutMs} ms; progress seen ${JSON.stringify(rep.progress)}`);
    await page.waitForTimeout(100);
  }
  rep.message = (await notice.first().textContent())?.trim();
  rep.textBeforeApply = await editorText(page);
  if (cfg.artifacts) await page.screenshot({ path: join(cfg.artifacts, 'vscode-e2e-goal.png') });
  step('goal: LSP Agent: Apply a Goal Run…');
  await runCommand(page, 'LSP Agent: Apply a Goal Run…');
  const rows = page.locator('.quick-input-list .monaco-list-row');
  await rows.first().waitFor({ timeout: 20_000 });
  rep.pick = await rows.allTextContents();
  await page.keyboard.press('Enter');
  step('goal: wait for the edit');
  rep.text = await waitForText(page, readFileSync(sc.expect, 'utf8'));
  return rep;
}

// The language servers the extension started: processes running serverCommand inside the
// session that code-server leads (spawned detached, i.e. setsid), so that servers other test runs
// on this machine started do not count.
function serverProcesses() {
  const wanted = cfg.serverCommand.join('\0');
  const found = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const session = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
      if (session !== codeServer?.pid) continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmdline.includes(wanted)) continue;
      found.push({ pid: Number(pid), env: readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0') });
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

// SIGTERM to the whole process group, SIGKILL to whatever is left after 5 s.
async function stopGroup(pgid) {
  const alive = () => {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 50 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
  if (alive()) process.kill(-pgid, 'SIGKILL');
}

const root = mkdtempSync(join(tmpdir(), 'lsp-agent-vscode-e2e-'));
const home = join(root, 'home');
const userData = join(root, 'user-data');
const extensions = join(root, 'extensions');
for (const dir of [home, join(userData, 'User'), extensions]) mkdirSync(dir, { recursive: true });
const env = {
  ...process.env,
  ...(cfg.env ?? {}),
  HOME: home,
  XDG_CONFIG_HOME: join(home, '.config'),
  XDG_DATA_HOME: join(home, '.local/share'),
  XDG_CACHE_HOME: join(home, '.cache'),
};
writeFileSync(
  join(userData, 'User', 'settings.json'),
  JSON.stringify({
    'lspAgent.server.command': cfg.serverCommand,
    'security.workspace.trust.enabled': false,
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'telemetry.telemetryLevel': 'off',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'update.mode': 'none',
    'chat.commandCenter.enabled': false,
    'editor.lightbulb.enabled': 'off',
    // Edits must stay in the buffer so the test can tell applyEdit from a write behind its back.
    'files.autoSave': 'off',
  }),
);

let codeServer;
let browser;
let ok = false;
try {
  step('install the .vsix');
  const common = ['--user-data-dir', userData, '--extensions-dir', extensions];
  const install = spawnSync(
    process.execPath,
    [cfg.codeServer, ...common, '--install-extension', cfg.vsix, '--force'],
    { env, encoding: 'utf8', timeout: 120_000 },
  );
  if (install.status !== 0) throw new Error(`--install-extension failed: ${install.stderr}${install.stdout}`);

  step('start code-server');
  const port = await freePort();
  // detached: node calls setsid(), so code-server leads its own session and process group; the
  // extension host and the language server it spawns stay in it, and killing the group ends all.
  // (Wrapping it in the setsid program instead would fork a second session that escapes.)
  codeServer = spawn(
    process.execPath,
    [
      cfg.codeServer, ...common,
      '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none',
      '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
      '--disable-getting-started-override', '--ignore-last-opened', cfg.workspace,
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  const serverLog = [];
  codeServer.stdout.on('data', (d) => serverLog.push(String(d)));
  codeServer.stderr.on('data', (d) => serverLog.push(String(d)));
  report.codeServerLog = serverLog;
  await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000);

  step('open the workspace in headless chromium');
  browser = await chromium.launch({
    executablePath: cfg.chromium ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(60_000);
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(cfg.workspace)}`);
  await page.locator('.monaco-workbench').waitFor();

  step('wait for the workbench');
  await page.locator('.statusbar-item', { hasText: 'LSP Agent' }).first().waitFor({ timeout: 60_000 });

  if (cfg.apiKey) {
    step('LSP Agent: Set API Key');
    const before = serverProcesses().map((p) => p.pid);
    await runCommand(page, 'LSP Agent: Set API Key');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    await input.fill(cfg.apiKey);
    await page.keyboard.press('Enter');
    step('wait for the server to restart with the key in its environment');
    const deadline = Date.now() + 60_000;
    let restarted;
    while (!restarted && Date.now() < deadline) {
      restarted = serverProcesses().find(
        (p) => !before.includes(p.pid) && p.env.includes(`LSP_AGENT_API_KEY=${cfg.apiKey}`),
      );
      if (!restarted) await page.waitForTimeout(200);
    }
    if (!restarted) throw new Error(`no restarted server with the key; before ${before}, now ${JSON.stringify(serverProcesses().map((p) => p.pid))}`);
    report.apiKey = {
      restarted: true,
      oldServers: before,
      inSettings: readFileSync(join(userData, 'User', 'settings.json'), 'utf8').includes(cfg.apiKey),
    };
  }

  report.scenarios = [];
  for (const sc of cfg.scenarios ?? [cfg]) {
    const rep = { file: sc.file, via: sc.via ?? 'codeAction' };
    report.scenarios.push(rep);
    step(`${sc.file}: open`);
    await openFile(page, sc.file);
    step(`${sc.file}: select`);
    await selectLine(page, sc.selectLine);
    if (rep.via === 'command') {
      step(`${sc.file}: LSP Agent: Run Instruction on Selection`);
      await runCommand(page, 'LSP Agent: Run Instruction on Selection');
    } else {
      step(`${sc.file}: code action "${sc.action}"`);
      rep.menu = await chooseCodeAction(page, sc.action);
    }
    if (sc.instruction) {
      step(`${sc.file}: answer the instruction prompt`);
      const input = page.locator('.quick-input-widget input');
      await input.waitFor({ state: 'visible', timeout: 20_000 });
      await input.fill(sc.instruction);
      await page.keyboard.press('Enter');
    }
    step(`${sc.file}: wait for the edit`);
    rep.text = await waitForText(page, readFileSync(sc.expect, 'utf8'));
  }

  if (report.apiKey) {
    // Checked after the scenarios: the stopped server has had seconds to exit by now.
    const alive = serverProcesses().map((p) => p.pid);
    const left = report.apiKey.oldServers.filter((pid) => alive.includes(pid));
    report.apiKey.oldServerGone = left.length === 0;
    if (left.length) {
      report.apiKey.leftOver = left.map((pid) => {
        try {
          return readFileSync(`/proc/${pid}/stat`, 'utf8');
        } catch {
          return `${pid} gone`;
        }
      });
    }
    delete report.apiKey.oldServers;
  }

  if (cfg.goal) report.goal = await goalScenario(page, cfg.goal);

  if (cfg.cancel) report.cancel = await cancelScenario(page, cfg.cancel);

  step('show tasks');
  await runCommand(page, 'LSP Agent: Show Tasks');
  const row = page.locator('.quick-input-list .monaco-list-row').first();
  await row.waitFor({ timeout: 20_000 });
  report.tasksPick = await page.locator('.quick-input-list .monaco-list-row').allTextContents();
  await page.keyboard.press('Escape');
  report.statusBar = await page.locator('.statusbar-item', { hasText: 'LSP Agent' }).first().textContent();

  step('show context');
  await runCommand(page, 'LSP Agent: Show Context');
  const manifest = page.locator('.view-lines', { hasText: 'lsp-agent context' }).first();
  await manifest.waitFor({ timeout: 30_000 });
  report.context = (await manifest.textContent())?.replace(/\u00a0/g, ' ');

  if (cfg.artifacts) await page.screenshot({ path: join(cfg.artifacts, 'vscode-e2e.png') });
  ok = true;
} catch (err) {
  report.error = String(err?.stack ?? err);
  if (browser && cfg.artifacts) {
    const page = browser.contexts()[0]?.pages()[0];
    await page?.screenshot({ path: join(cfg.artifacts, 'vscode-e2e-failure.png') }).catch(() => {});
  }
} finally {
  await browser?.close().catch(() => {});
  if (codeServer?.pid) await stopGroup(codeServer.pid);
  report.seconds = (Date.now() - report.started) / 1000;
  if (ok) delete report.codeServerLog;
  else report.codeServerLog = (report.codeServerLog ?? []).join('').slice(-4000);
  process.stdout.write(JSON.stringify(report) + '\n');
  if (cfg.artifacts) writeFileSync(join(cfg.artifacts, 'vscode-e2e-report.json'), JSON.stringify(report, null, 1));
  rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  process.exit(ok ? 0 : 1);
}
