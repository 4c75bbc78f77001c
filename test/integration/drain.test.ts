/** Graceful shutdown end to end: real process, real signals, real sockets. */
import { once } from 'node:events';
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { get, tryConnect } from '../support/http.ts';
import { exitWithin, killAll, startSluice, transitionTo, type SluiceProcess } from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { testConfig, writeConfig } from '../support/config-file.ts';
import type { ReadyDocument } from '../support/documents.ts';

const upstreams: TestUpstream[] = [];

async function healthySluice(
  proxy: Record<string, unknown> = {},
): Promise<{ sluice: SluiceProcess; port: number; upstream: TestUpstream }> {
  const upstream = await startUpstream('a');
  upstreams.push(upstream);
  const sluice = startSluice(['-c', writeConfig(testConfig([{ port: upstream.port }], proxy))]);
  const port = await sluice.port();
  await sluice.waitForLog(transitionTo('healthy'));
  return { sluice, port, upstream };
}

const stoppedLine = (sluice: SluiceProcess) => sluice.waitForLog((l) => l.msg === 'Shutdown complete');
const path = (sluice: SluiceProcess) =>
  sluice.lines
    .filter((l) => 'from' in l && 'to' in l && 'event' in l && l['actor'] === 'supervisor')
    .map((l) => `${String(l['from'])}->${String(l['to'])}`);

test.after(async () => {
  killAll();
  await Promise.all(upstreams.map((u) => u.close()));
});

test('SIGTERM: the in-flight request completes with Connection: close, new connections are refused, exit 0', async () => {
  const { sluice, port, upstream } = await healthySluice();
  const inFlight = get(port, upstream.holdPath);
  await upstream.nextHeld();
  sluice.kill('SIGTERM');
  await sluice.waitForLog((l) => l['event'] === 'listeners.closed');
  assert.is(await tryConnect(port), 'ECONNREFUSED');
  upstream.release();
  const answer = await inFlight;
  assert.is(answer.status, 200);
  assert.is(answer.body, 'a\n');
  assert.is(answer.headers['connection'], 'close');
  const { code } = await exitWithin(sluice);
  assert.is(code, 0);
  const last = await stoppedLine(sluice);
  assert.is(last['reason'], 'drained');
  assert.is(last['force_closed'], 0);
  assert.equal(path(sluice), ['starting->healthy', 'healthy->draining', 'draining->stopped']);
  assert.ok(sluice.lines.some((l) => l.msg === 'Initiating graceful shutdown...'));
});

test('SIGTERM: a connection accepted but silent so far is served once, with Connection: close, not reset', async () => {
  const { sluice, port, upstream } = await healthySluice({ workers: 1 });
  // A request held in flight keeps the drain going while the silent connection speaks.
  const inFlight = get(port, upstream.holdPath);
  await upstream.nextHeld();
  const silent = connect({ host: '127.0.0.1', port });
  await once(silent, 'connect');
  // One listener thread accepts in order: once a later connection is answered, the silent one was accepted.
  assert.is((await get(port, '/')).status, 200);
  let received = '';
  silent.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
  const closed = once(silent, 'close');
  sluice.kill('SIGTERM');
  await sluice.waitForLog((l) => l['event'] === 'listeners.closing');
  silent.write('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
  await closed;
  assert.match(received, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(received, /\r\nConnection: close\r\n/i);
  upstream.release();
  assert.is((await inFlight).status, 200);
  assert.is((await exitWithin(sluice)).code, 0);
});

test('SIGINT with a grace period: still accepting, every response says Connection: close, /health and /ready 503, /live 200', async () => {
  const { sluice, port } = await healthySluice({ grace_period_ms: 1_500 });
  sluice.kill('SIGINT');
  await sluice.waitForLog(transitionTo('draining'));
  const health = await get(port, '/health');
  assert.is(health.status, 503);
  assert.equal(JSON.parse(health.body), { status: 'unhealthy', state: 'draining' });
  assert.is(health.headers['connection'], 'close');
  const ready = await get(port, '/ready');
  assert.is(ready.status, 503);
  assert.is((JSON.parse(ready.body) as ReadyDocument).ready, false);
  assert.is((await get(port, '/live')).status, 200);
  const proxied = await get(port, '/during-grace');
  assert.is(proxied.status, 200);
  assert.is(proxied.headers['connection'], 'close');
  const { code } = await exitWithin(sluice);
  assert.is(code, 0);
  assert.is((await stoppedLine(sluice))['reason'], 'drained');
});

test('drain timeout: the stuck connection is force-closed and counted, exit 0', async () => {
  const { sluice, port, upstream } = await healthySluice({ drain_timeout_ms: 300 });
  const inFlight = get(port, upstream.holdPath).then(
    () => 'answered',
    (error: unknown) => (error as NodeJS.ErrnoException).code ?? (error as Error).message,
  );
  await upstream.nextHeld();
  sluice.kill('SIGTERM');
  const { code } = await exitWithin(sluice);
  assert.is(code, 0);
  assert.is(await inFlight, 'ECONNRESET');
  const timeoutLine = await sluice.waitForLog((l) => l.msg === 'Timeout waiting for connections to drain');
  assert.is(timeoutLine['force_closed'], 1);
  assert.is((await stoppedLine(sluice))['reason'], 'drain_timeout');
  assert.equal(path(sluice).at(-1), 'draining->stopped');
});

test('a second signal while draining stops at once, exit 0', async () => {
  const { sluice, port, upstream } = await healthySluice({ drain_timeout_ms: 60_000 });
  const inFlight = get(port, upstream.holdPath).catch((error: unknown) => (error as NodeJS.ErrnoException).code);
  await upstream.nextHeld();
  sluice.kill('SIGTERM');
  await sluice.waitForLog(transitionTo('draining'));
  sluice.kill('SIGTERM');
  const { code } = await exitWithin(sluice, 5_000);
  assert.is(code, 0);
  assert.is(await inFlight, 'ECONNRESET');
  const last = await stoppedLine(sluice);
  assert.is(last['reason'], 'second_signal');
  assert.is(last['force_closed'], 1);
});

test('a signal during starting stops at once with exit 0', async () => {
  // A backend that never answers keeps sluice in `starting`.
  const sluice = startSluice(['-c', writeConfig(testConfig([{ port: 1 }], { startup_timeout_ms: 60_000 }))]);
  await sluice.port();
  sluice.kill('SIGTERM');
  const { code } = await exitWithin(sluice);
  assert.is(code, 0);
  assert.is((await stoppedLine(sluice))['reason'], 'signal_during_startup');
  assert.equal(path(sluice), ['starting->stopped']);
});

test.run();
