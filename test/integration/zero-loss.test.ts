/**
 * Drain, reload and supervision under continuous keep-alive load, outcomes
 * counted by kind (test/support/load.ts). The hot restart has its own file.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort, tryConnect, until } from '../support/http.ts';
import { startLoad, type LoadCounts } from '../support/load.ts';
import { exitWithin, killAll, startSluice, transitionTo } from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';

const crashHook = fileURLToPath(new URL('../support/crash-hook.ts', import.meta.url));
const upstreams: TestUpstream[] = [];

test.after(async () => {
  killAll();
  await Promise.all(upstreams.map((u) => u.close()));
});

async function upstream(name: string): Promise<TestUpstream> {
  const u = await startUpstream(name);
  upstreams.push(u);
  return u;
}

const report = (counts: LoadCounts, failures: string[]) => `${JSON.stringify(counts)} ${failures.join('; ')}`;

test('SIGTERM under keep-alive load: every accepted request completes; connections fail only once the listening sockets close', async () => {
  const a = await upstream('a');
  const proc = startSluice([
    '-c',
    writeConfig(testConfig([{ port: a.port }], { workers: 2, grace_period_ms: 300, drain_timeout_ms: 5_000 })),
  ]);
  const port = await proc.port();
  await proc.waitForLog(transitionTo('healthy'));
  const load = startLoad(port, { clients: 8 });
  try {
    await load.okAfter(200);
    proc.kill('SIGTERM');
    assert.is((await exitWithin(proc)).code, 0);
    // A few more rounds against the closed port: these can only be refused.
    const counts = await load.stop();
    const closing = proc.lines.find((l) => l['event'] === 'listeners.closing')!;
    assert.ok(closing, 'the listeners were closed');
    // Refused (nobody listens) or unaccepted (reset in the accept queue as the socket closed):
    // connections the proxy never read a byte of. Nothing it accepted is lost.
    assert.equal(
      { ...counts, ok: 0, refused: 0, unaccepted: 0 },
      { ok: 0, refused: 0, unaccepted: 0, reset: 0, status5xx: 0, otherStatus: 0, truncated: 0, other: 0 },
      report(counts, load.failures),
    );
    const early = load.failedAt.filter((f) => f.at < (closing['time'] as number));
    assert.equal(early, [], 'no connection failed while the listeners were open');
    assert.ok(counts.ok > 200);
  } finally {
    await load.stop();
  }
});

test('SIGHUP under load, to a new backend set, then an invalid file: no request fails, traffic moves to the new set', async () => {
  const a = await upstream('a');
  const b = await upstream('b');
  const dir = tempDir();
  const configFile = join(dir, 'sluice.json');
  const base = testConfig([{ port: a.port }], { workers: 2 });
  writeFileSync(configFile, JSON.stringify(base));
  const proc = startSluice(['-c', configFile, '--log-level', 'debug']);
  const port = await proc.port();
  await proc.waitForLog(transitionTo('healthy'));
  const load = startLoad(port, { clients: 8 });
  try {
    await load.okAfter(200);
    writeFileSync(configFile, JSON.stringify({ ...base, backends: [{ address: '127.0.0.1', port: b.port }] }));
    const reloadedAt = proc.lines.length;
    proc.kill('SIGHUP');
    await proc.waitForLog((l) => l['event'] === 'RELOAD', 10_000, reloadedAt);
    // Once b has passed its first check, a is dropped and every listener routes only to b.
    for (const listener of [0, 1]) {
      await proc.waitForLog(
        (l) =>
          l['event'] === 'snapshot.applied' && l['listener'] === listener && l['total'] === 1 && l['selectable'] === 1,
        10_000,
        reloadedAt,
      );
    }
    const switched = load.answeredBy.length;
    await load.okAfter(200);
    assert.ok(
      load.answeredBy.slice(switched + 16).every((name) => name === 'b'),
      'only b answers after the switch',
    );

    writeFileSync(configFile, '{ "proxy": { "workers": ');
    const mark = proc.lines.length;
    proc.kill('SIGHUP');
    await proc.waitForLog((l) => l['event'] === 'config.reload_failed', 10_000, mark);
    await load.okAfter(200);
    assert.ok(
      load.answeredBy.slice(-100).every((name) => name === 'b'),
      'the invalid file changed nothing',
    );

    const counts = await load.stop();
    assert.equal(
      { ...counts, ok: 0 },
      { ok: 0, refused: 0, unaccepted: 0, reset: 0, status5xx: 0, otherStatus: 0, truncated: 0, other: 0 },
      report(counts, load.failures),
    );
  } finally {
    await load.stop();
    proc.kill('SIGTERM');
    await exitWithin(proc);
  }
});

test('SIGHUP under load to new routes and upstreams: the old table serves until the new upstream can, no request fails', async () => {
  const a = await upstream('a');
  const b = await upstream('b');
  const configFile = join(tempDir(), 'sluice.json');
  const base = testConfig([], { workers: 2 });
  const routed = (name: string, port: number) => ({
    ...base,
    upstreams: { [name]: { backends: [{ address: '127.0.0.1', port }] } },
    routes: [{ name: 'all', match: { path_prefix: '/' }, upstream: name }],
  });
  writeFileSync(configFile, JSON.stringify(routed('old', a.port)));
  const proc = startSluice(['-c', configFile]);
  const port = await proc.port();
  await proc.waitForLog(transitionTo('healthy'));
  const load = startLoad(port, { clients: 8 });
  try {
    await load.okAfter(200);
    // The old upstream goes and a new one, whose backend starts unhealthy, takes the route.
    writeFileSync(configFile, JSON.stringify(routed('new', b.port)));
    const reloadedAt = proc.lines.length;
    proc.kill('SIGHUP');
    await proc.waitForLog((l) => l['event'] === 'RELOAD', 10_000, reloadedAt);
    const switched = await until(
      () => load.answeredBy.length,
      () => load.answeredBy.slice(-16).every((name) => name === 'b'),
      200,
      25,
    );
    await load.okAfter(200);
    assert.ok(
      load.answeredBy.slice(switched).every((name) => name === 'b'),
      'only b answers after the switch',
    );
    const counts = await load.stop();
    assert.equal(
      { ...counts, ok: 0 },
      { ok: 0, refused: 0, unaccepted: 0, reset: 0, status5xx: 0, otherStatus: 0, truncated: 0, other: 0 },
      report(counts, load.failures),
    );
  } finally {
    await load.stop();
    proc.kill('SIGTERM');
    await exitWithin(proc);
  }
});

test('a listener thread crashing under load: the other keeps serving, the crashed one is restarted, losses stop at the crash', async () => {
  const a = await upstream('a');
  const triggerPort = await freePort();
  const proc = startSluice(['-c', writeConfig(testConfig([{ port: a.port }], { workers: 2 }))], {
    env: { SLUICE_TEST_HOOKS: crashHook, SLUICE_TEST_CRASH: `listener:1:on-connect:${triggerPort}` },
  });
  const port = await proc.port();
  await proc.waitForLog(transitionTo('healthy'));
  const clients = 8;
  const load = startLoad(port, { clients });
  try {
    await load.okAfter(200);
    assert.is(await tryConnect(triggerPort), 'connected');
    const restarted = await proc.waitForLog(
      (l) => l['event'] === 'actor.restarted' && l['actor'] === 'listener' && l['id'] === 1,
    );
    await load.okAfter(300);
    const counts = await load.stop();
    // What the dead thread held: at most one request per client, and its accept queue.
    assert.ok(load.failedAt.length <= clients * 2, report(counts, load.failures));
    assert.is(counts.status5xx + counts.truncated + counts.otherStatus, 0, report(counts, load.failures));
    assert.equal(
      load.failedAt.filter((f) => f.at > (restarted['time'] as number)),
      [],
      'nothing fails once the thread is back',
    );
    assert.not.ok(proc.lines.some(transitionTo('draining')), 'the lifecycle never left healthy');
  } finally {
    await load.stop();
    proc.kill('SIGTERM');
    await exitWithin(proc);
  }
});

test.run();
