/** A crashing worker thread becomes an event the supervisor handles: never an unhandled crash of the process. */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort, get, tryConnect, until } from '../support/http.ts';
import { exitWithin, killAll, repoRoot, startSluice, transitionTo, type LogLine } from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';
import type { ReadyDocument } from '../support/documents.ts';

const crashHook = fileURLToPath(new URL('../support/crash-hook.ts', import.meta.url));
const upstreams: TestUpstream[] = [];

test.after(async () => {
  killAll();
  await Promise.all(upstreams.map((u) => u.close()));
});

test('a pool actor whose start throws: logged, stopped, exit 1 (a start failure is not retried)', async () => {
  const upstream = await startUpstream('a');
  upstreams.push(upstream);
  const sluice = startSluice(['-c', writeConfig(testConfig([{ port: upstream.port }]))], {
    env: { SLUICE_TEST_HOOKS: crashHook, SLUICE_TEST_CRASH: 'pool:start' },
  });
  assert.is((await exitWithin(sluice)).code, 1);
  const failed = sluice.lines.find((l) => l['event'] === 'actor.failed' && l['actor'] === 'pool');
  assert.match(String(failed?.['reason']), 'injected crash of pool at start');
  const last = await sluice.waitForLog((l) => l.msg === 'Shutdown complete');
  assert.is(last['reason'], 'worker_failed');
  assert.is(last['exit_code'], 1);
  // Nothing escaped as an uncaught error: stderr holds the one summary line.
  assert.is(sluice.stderr(), `sluice: failed to start: ${String(failed?.['reason'])}\n`);
});

/** `sluice -d …` to completion: what its parent printed on stderr, and its exit code. */
async function daemonStart(configFile: string): Promise<{ code: number; stderr: string }> {
  try {
    const command = [join(repoRoot, 'src/main.ts'), '-d', '-c', configFile];
    const { stderr } = await promisify(execFile)(process.execPath, command, { timeout: 30_000 });
    return { code: 0, stderr };
  } catch (error) {
    const e = error as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

const unloadableHooks = [
  { name: 'a missing request_hooks module', file: 'nope.ts', source: undefined, code: 'ERR_MODULE_NOT_FOUND' },
  {
    name: 'a request_hooks module with a syntax error',
    file: 'broken.ts',
    source: 'export function onRequestStart( {\n',
    code: 'ERR_INVALID_TYPESCRIPT_SYNTAX',
  },
  { name: 'a JS request_hooks module that does not parse', file: 'bad.mjs', source: 'let x = ;', code: 'SyntaxError' },
];

for (const hooks of unloadableHooks) {
  test(`${hooks.name}: the thread's error logged with its code; stderr ends with the line -d prints`, async () => {
    const dir = tempDir();
    const module = join(dir, hooks.file);
    if (hooks.source !== undefined) writeFileSync(module, hooks.source);
    const config = testConfig([{ port: 1 }], { request_hooks: module, workers: 2 });
    const sluice = startSluice(['-c', writeConfig(config)]);
    assert.is((await exitWithin(sluice)).code, 1);
    const isFailure = (l: LogLine) => l.level === 50 && l['actor'] === 'listener' && l['code'] === hooks.code;
    const failed = sluice.lines.findIndex(isFailure);
    const got = sluice.lines.map((l) => JSON.stringify(l)).join('\n');
    assert.ok(failed >= 0, `an error line with the thread's code; got:\n${got}`);
    const line = sluice.lines[failed]!;
    assert.is(line['id'], 0);
    assert.match(String(line['reason']), module);
    const stop = sluice.lines.findIndex((l) => l.msg === 'Shutdown complete');
    assert.ok(failed < stop, 'logged before the stop line');
    assert.is(sluice.lines[stop]!['reason'], 'worker_failed');
    const summary = `sluice: failed to start: ${String(line['reason'])}`;
    assert.is(sluice.stderr(), `${summary}\n`);

    // -d prints the same line (its child logs to a file).
    const daemonConfig = {
      ...config,
      proxy: { ...config.proxy, pid_file: join(dir, 'sluice.pid') },
      log: { file: join(dir, 'sluice.log') },
    };
    const daemon = await daemonStart(writeConfig(daemonConfig));
    assert.is(daemon.code, 1);
    assert.is(daemon.stderr, `${summary}\n`);
  });
}

test('a pool actor crashing while running: restarted with backoff 100, 200, 400, 800, 1600 ms, then given up on', async () => {
  const upstream = await startUpstream('a');
  upstreams.push(upstream);
  const triggerPort = await freePort();
  const sluice = startSluice(['-c', writeConfig(testConfig([{ port: upstream.port }], { workers: 1 }))], {
    env: { SLUICE_TEST_HOOKS: crashHook, SLUICE_TEST_CRASH: `pool:0:on-connect:${triggerPort}` },
  });
  const port = await sluice.port();
  await sluice.waitForLog(transitionTo('healthy'));
  for (let crash = 1; crash <= 5; crash++) {
    const from = sluice.lines.length;
    assert.is(await tryConnect(triggerPort), 'connected');
    await sluice.waitForLog((l) => l['event'] === 'actor.restarted' && l['actor'] === 'pool', 10_000, from);
    // The restarted pool starts from the health known before: traffic never stops.
    assert.is((await get(port, `/after-pool-restart-${crash}`)).body, 'a\n');
  }
  const delays = sluice.lines
    .filter((l) => l['event'] === 'actor.restarting' && l['actor'] === 'pool')
    .map((l) => l['delay_ms']);
  assert.equal(delays, [100, 200, 400, 800, 1600]);
  assert.is(await tryConnect(triggerPort), 'connected');
  await sluice.waitForLog(
    (l) => l['event'] === 'actor.gave_up' && l['actor'] === 'pool' && l['id'] === 0 && l['failures'] === 6,
  );
  assert.is((await exitWithin(sluice, 20_000)).code, 1);
});

test('a listener thread crashing while healthy is restarted; the proxy keeps serving', async () => {
  const upstream = await startUpstream('a');
  upstreams.push(upstream);
  const triggerPort = await freePort();
  const sluice = startSluice(['-c', writeConfig(testConfig([{ port: upstream.port }], { workers: 2 }))], {
    env: { SLUICE_TEST_HOOKS: crashHook, SLUICE_TEST_CRASH: `listener:1:on-connect:${triggerPort}` },
  });
  const port = await sluice.port();
  await sluice.waitForLog(transitionTo('healthy'));
  assert.is(await tryConnect(triggerPort), 'connected');
  await sluice.waitForLog((l) => l['event'] === 'actor.restarted' && l['actor'] === 'listener' && l['id'] === 1);
  // The crash is logged with the thread's error: its code (here the error's name) and message.
  const crashed = sluice.lines.find((l) => l['event'] === 'actor.failed' && l['actor'] === 'listener' && l['id'] === 1);
  assert.is(crashed?.['code'], 'Error');
  assert.match(String(crashed?.['reason']), 'injected crash of listener 1');
  for (let i = 0; i < 20; i++) assert.is((await get(port, `/after-restart-${i}`)).status, 200);
  assert.not.ok(sluice.lines.some(transitionTo('draining')), 'the lifecycle never left healthy');
  sluice.kill('SIGTERM');
  assert.is((await exitWithin(sluice)).code, 0);
});

test('a listener thread crashing six times within a minute: given up on, the rest drain, exit 1', async () => {
  const upstream = await startUpstream('a');
  upstreams.push(upstream);
  const triggerPort = await freePort();
  const sluice = startSluice(['-c', writeConfig(testConfig([{ port: upstream.port }], { workers: 2 }))], {
    env: { SLUICE_TEST_HOOKS: crashHook, SLUICE_TEST_CRASH: `listener:1:on-connect:${triggerPort}` },
  });
  await sluice.waitForLog(transitionTo('healthy'));
  for (let crash = 1; crash <= 5; crash++) {
    const from = sluice.lines.length;
    assert.is(await tryConnect(triggerPort), 'connected');
    await sluice.waitForLog((l) => l['event'] === 'actor.restarted' && l['actor'] === 'listener', 10_000, from);
  }
  assert.is(await tryConnect(triggerPort), 'connected');
  const draining = await sluice.waitForLog(transitionTo('draining'));
  assert.is(draining['event'], 'WORKER_FAILED');
  assert.is((await exitWithin(sluice)).code, 1);
  assert.ok(
    sluice.lines.some(
      (l) => l['event'] === 'actor.gave_up' && l['actor'] === 'listener' && l['id'] === 1 && l['failures'] === 6,
    ),
  );
});

test('a hung pool actor misses its heartbeat, is ended and restarted; routing never stops', async () => {
  const upstream = await startUpstream('a');
  upstreams.push(upstream);
  const triggerPort = await freePort();
  const sluice = startSluice(['-c', writeConfig(testConfig([{ port: upstream.port }], { workers: 1 }))], {
    env: { SLUICE_TEST_HOOKS: crashHook, SLUICE_TEST_CRASH: `pool:0:hang-on-connect:${triggerPort}` },
  });
  const port = await sluice.port();
  await sluice.waitForLog(transitionTo('healthy'));
  assert.is((await get(port, '/ready')).status, 200);
  assert.is(await tryConnect(triggerPort), 'connected');
  await sluice.waitForLog((l) => l['event'] === 'actor.missed_heartbeat' && l['actor'] === 'pool');
  // Routing goes on from the snapshot each listener holds, while the pool is replaced.
  assert.is((await get(port, '/still-routed')).body, 'a\n');
  await sluice.waitForLog((l) => l['event'] === 'actor.restarted' && l['actor'] === 'pool');
  const ready = await until(
    () => get(port, '/ready'),
    (a) => a.status === 200,
  );
  assert.equal((JSON.parse(ready.body) as ReadyDocument).checks, {
    backends_available: true,
    pool_healthy: true,
    cache_healthy: true,
  });
  sluice.kill('SIGTERM');
  assert.is((await exitWithin(sluice)).code, 0);
});

test.run();
