/** Health checking and balancing through a real sluice process. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { get, until } from '../support/http.ts';
import {
  exitWithin,
  killAll,
  routingTo,
  startSluice,
  transitionTo,
  type LogLine,
  type SluiceProcess,
} from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { testConfig, writeConfig } from '../support/config-file.ts';
import type { ReadyDocument } from '../support/documents.ts';

const upstreams: TestUpstream[] = [];
const running: SluiceProcess[] = [];
const upstream = async (name: string) => {
  const u = await startUpstream(name);
  upstreams.push(u);
  return u;
};

const flip = (backend: TestUpstream, to: 'healthy' | 'unhealthy') => (l: LogLine) =>
  l['backend'] === `127.0.0.1:${backend.port}` && l['to'] === to;

/**
 * Starts sluice and waits until it is healthy and every listener thread
 * routes to at least `selectable` backends (its debug line `snapshot applied`).
 */
async function sluiceWith(
  config: { proxy: { workers: number } },
  selectable = 1,
): Promise<{ sluice: SluiceProcess; port: number }> {
  const sluice = startSluice(['-c', writeConfig(config), '--log-level', 'debug']);
  running.push(sluice);
  const port = await sluice.port();
  await sluice.waitForLog(transitionTo('healthy'));
  await routingTo(sluice, config.proxy.workers, selectable);
  return { sluice, port };
}

test.after(async () => {
  for (const sluice of running) sluice.kill('SIGTERM');
  await Promise.all(
    running.map((s) =>
      exitWithin(s).catch(() => {
        /* killAll below ends whatever did not exit in time */
      }),
    ),
  );
  killAll();
  await Promise.all(upstreams.map((u) => u.close()));
});

test('a backend failing its health path gets no traffic; the failure reason is logged', async () => {
  const good = await upstream('good');
  const bad = await upstream('bad');
  bad.healthStatus = 500;
  const { sluice, port } = await sluiceWith(testConfig([{ port: good.port }, { port: bad.port }], { workers: 2 }));
  for (let i = 0; i < 20; i++) assert.is((await get(port, `/x${i}`)).body, 'good\n');
  assert.is(bad.received.length, 0);
  assert.ok(bad.probes > 0, 'the failing backend is still probed');
  // It never passed, so it never flipped: nothing logged as healthy for it.
  assert.not.ok(sluice.lines.some(flip(bad, 'healthy')));
});

test('expected_status and host: the probe sends the Host header and accepts only the listed status', async () => {
  const a = await upstream('a');
  a.healthStatus = 204;
  const { sluice } = await sluiceWith(
    testConfig([{ port: a.port }], { workers: 1 }, { expected_status: [204], host: 'health.internal' }),
  );
  assert.is((await sluice.waitForLog(flip(a, 'healthy')))['reason'], 'status 204');
  a.healthStatus = 200;
  assert.is((await sluice.waitForLog(flip(a, 'unhealthy')))['reason'], 'status 200');
});

test('startup with one dead and one live backend is healthy within one check interval', async () => {
  const live = await upstream('live');
  const intervalMs = 5_000;
  const { sluice } = await sluiceWith(
    testConfig([{ port: 1 }, { port: live.port }], { workers: 1 }, { interval_ms: intervalMs }),
  );
  const started = sluice.lines.find((l) => String(l.msg).startsWith('Starting proxy'))!;
  const healthy = await sluice.waitForLog(transitionTo('healthy'));
  const tookMs = (healthy['time'] as number) - (started['time'] as number);
  assert.ok(tookMs < intervalMs, `healthy after ${tookMs} ms`);
});

test('enabled: false — probed, never chosen', async () => {
  const on = await upstream('on');
  const off = await upstream('off');
  const config = testConfig([{ port: on.port }, { port: off.port }], { workers: 1 });
  config.backends[1] = { ...config.backends[1]!, enabled: false } as (typeof config.backends)[number];
  const { sluice, port } = await sluiceWith(config);
  await sluice.waitForLog(flip(off, 'healthy'));
  for (let i = 0; i < 10; i++) assert.is((await get(port, `/y${i}`)).body, 'on\n');
  assert.is(off.received.length, 0);
  await until(
    () => off.probes,
    (n) => n > 0,
  );
});

test('min_healthy: /ready needs that many backends', async () => {
  const a = await upstream('a');
  const { port } = await sluiceWith(testConfig([{ port: a.port }, { port: 1 }], { workers: 1 }, { min_healthy: 2 }));
  const ready = await get(port, '/ready');
  assert.is(ready.status, 503);
  assert.is((JSON.parse(ready.body) as ReadyDocument).checks.backends_available, false);
  assert.is((await get(port, '/health')).status, 200);
});

test('passive health: consecutive resets eject a backend, then the active check brings it back', async () => {
  const steady = await upstream('steady');
  const flaky = await upstream('flaky');
  const config = testConfig(
    [{ port: steady.port }, { port: flaky.port }],
    { workers: 2 },
    { interval_ms: 200, passive: { failures: 3, ejection_ms: 2_500 } },
  );
  const { sluice, port } = await sluiceWith(config, 2);
  flaky.mode = 'reset';
  // GETs are retried on the steady backend, so clients see no failure while flaky is being ejected.
  for (
    let i = 0;
    i < 12 && !sluice.lines.some((l) => l['actor'] === 'pool' && l['backend'] === `127.0.0.1:${flaky.port}`);
    i++
  ) {
    assert.is((await get(port, `/p${i}`)).body, 'steady\n');
  }
  const ejected = await sluice.waitForLog((l) => l['actor'] === 'pool' && l['to'] === 'unhealthy');
  assert.is(ejected['backend'], `127.0.0.1:${flaky.port}`);
  assert.match(String(ejected['reason']), 'passive: 3 consecutive failures');
  const ejectedAt = sluice.lines.indexOf(ejected);
  // The pool logs the ejection before its snapshot reaches the listener threads: wait until both route without flaky.
  for (const listener of [0, 1]) {
    const applied = (l: LogLine) =>
      l['event'] === 'snapshot.applied' && l['listener'] === listener && l['selectable'] === 1;
    await sluice.waitForLog(applied, 10_000, ejectedAt);
  }
  flaky.mode = 'normal';
  // While ejected it gets nothing, although its health checks pass. (The ejection lasts
  // 2.5 s so that these requests fall inside it even on a loaded machine.)
  const duringEjection = flaky.received.length;
  for (let i = 0; i < 6; i++) assert.is((await get(port, `/q${i}`)).body, 'steady\n');
  assert.is(flaky.received.length, duringEjection);
  // The active check re-admits it (after the ejection ends) and traffic returns.
  await sluice.waitForLog(flip(flaky, 'healthy'), 10_000, ejectedAt + 1);
  await until(
    () => get(port, '/back'),
    (a) => a.body === 'flaky\n',
  );
});

test('consistent_hash on a header: the same user always reaches the same backend', async () => {
  const a = await upstream('a');
  const b = await upstream('b');
  const c = await upstream('c');
  const config = {
    ...testConfig([{ port: a.port }, { port: b.port }, { port: c.port }], { workers: 2 }),
    load_balancing: { algorithm: 'consistent_hash', hash_key: 'header:x-user' },
  };
  const { port } = await sluiceWith(config, 3);
  const seen = new Set<string>();
  for (let user = 0; user < 12; user++) {
    const first = (await get(port, '/', { headers: { 'x-user': `u${user}` } })).body;
    seen.add(first);
    for (let i = 0; i < 3; i++) assert.is((await get(port, '/', { headers: { 'x-user': `u${user}` } })).body, first);
  }
  assert.ok(seen.size >= 2, 'users are spread over the backends');
});

test('least_connections: a backend holding a slow request gets none of the next ones, across threads', async () => {
  const a = await upstream('a');
  const b = await upstream('b');
  // b weighs 3: the moment a finished response to b still counts (1/3) never ties with a's held one (1/1).
  const config = {
    ...testConfig(
      [
        { port: a.port, weight: 1 },
        { port: b.port, weight: 3 },
      ],
      { workers: 2 },
    ),
    load_balancing: { algorithm: 'least_connections' },
  };
  const { port } = await sluiceWith(config, 2);
  b.holdPath = '/never-held';
  // Send the slow request until a holds it (a request least-connections sends to b is answered at once).
  let held: Promise<unknown> | undefined;
  for (let i = 0; i < 20 && !held; i++) {
    const answer = get(port, a.holdPath).catch((error: unknown) => (error as Error).message);
    if ((await Promise.race([a.nextHeld().then(() => 'held'), answer])) === 'held') held = answer;
  }
  assert.ok(held, 'a holds the slow request');
  const bodies: string[] = [];
  for (let i = 0; i < 8; i++) bodies.push((await get(port, `/n${i}`)).body);
  assert.equal(bodies, Array(8).fill('b\n'));
  a.release();
  assert.is(typeof (await held), 'object', 'the held request is answered');
});

test.run();
