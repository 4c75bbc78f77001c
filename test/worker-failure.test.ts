/** A crashing worker thread becomes an event the supervisor handles: never an unhandled crash of the process. */
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort, get, tryConnect, until } from './support/http.ts';
import { exitWithin, killAll, startSluice, transitionTo } from './support/sluice-process.ts';
import { startUpstream, type TestUpstream } from './support/upstream.ts';
import { testConfig, writeConfig } from './support/config-file.ts';

const crashHook = fileURLToPath(new URL('./support/crash-hook.ts', import.meta.url));
const upstreams: TestUpstream[] = [];

test.after(async () => {
  killAll();
  await Promise.all(upstreams.map((u) => u.close()));
});


test('the pool thread crashing during starting: logged, stopped, exit 1', async () => {
  const upstream = await startUpstream('a');
  upstreams.push(upstream);
  const sluice = startSluice(['-c', writeConfig(testConfig([{ port: upstream.port }]))], {
    env: { SLUICE_TEST_HOOKS: crashHook, SLUICE_TEST_CRASH: 'pool:start' },
  });
  const { code } = await exitWithin(sluice);
  assert.is(code, 1);
  const failed = sluice.lines.find((l) => l.msg === 'pool actor failed');
  assert.ok(failed, 'the failure is logged');
  assert.match(String(failed!['reason']), 'injected crash of pool at start');
  const last = await sluice.waitForLog((l) => l.msg === 'Shutdown complete');
  assert.is(last['reason'], 'worker_failed');
  assert.is(last['exit_code'], 1);
  assert.not.match(sluice.stderr(), 'injected crash', 'nothing escaped as an uncaught error');
});

test('a listener thread crashing while healthy: the rest drain, exit 1', async () => {
  const upstream = await startUpstream('a');
  upstreams.push(upstream);
  const triggerPort = await freePort();
  const sluice = startSluice(['-c', writeConfig(testConfig([{ port: upstream.port }], { workers: 2 }))], {
    env: { SLUICE_TEST_HOOKS: crashHook, SLUICE_TEST_CRASH: `listener:1:on-connect:${triggerPort}` },
  });
  await sluice.waitForLog(transitionTo('healthy'));
  assert.is(await tryConnect(triggerPort), 'connected');
  const draining = await sluice.waitForLog(transitionTo('draining'));
  assert.is(draining['event'], 'WORKER_FAILED');
  const { code } = await exitWithin(sluice);
  assert.is(code, 1);
  assert.ok(sluice.lines.some((l) => l.msg === 'listener actor failed' && l['id'] === 1));
  const last = await sluice.waitForLog((l) => l.msg === 'Shutdown complete');
  assert.is(last['from'], 'draining');
  assert.is(last['exit_code'], 1);
});

test('a hung pool actor misses its heartbeat: /ready turns 503 with pool_healthy false; stop still works', async () => {
  const upstream = await startUpstream('a');
  upstreams.push(upstream);
  const triggerPort = await freePort();
  const sluice = startSluice(['-c', writeConfig(testConfig([{ port: upstream.port }], { workers: 1, drain_timeout_ms: 1_000 }))], {
    env: { SLUICE_TEST_HOOKS: crashHook, SLUICE_TEST_CRASH: `pool:0:hang-on-connect:${triggerPort}` },
  });
  const port = await sluice.port();
  await sluice.waitForLog(transitionTo('healthy'));
  assert.is((await get(port, '/ready')).status, 200);
  assert.is(await tryConnect(triggerPort), 'connected');
  await sluice.waitForLog((l) => l.msg === 'pool actor missed its heartbeat');
  const ready = await until(() => get(port, '/ready'), (a) => a.status === 503);
  assert.equal(JSON.parse(ready.body).checks, { backends_available: true, pool_healthy: false, cache_healthy: true });
  // Routing goes on from the snapshot each listener holds.
  assert.is((await get(port, '/still-routed')).body, 'a\n');
  sluice.kill('SIGTERM');
  assert.is((await exitWithin(sluice)).code, 0);
});

test.run();
