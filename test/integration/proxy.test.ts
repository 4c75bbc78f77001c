/** Forwarding and the built-in endpoints, through a real sluice process with two listener threads. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { get, until } from '../support/http.ts';
import {
  killAll,
  type LogLine,
  type SluiceProcess,
  startRouting,
  startSluice,
  stopSluice,
  transitionTo,
} from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { testConfig, writeConfig } from '../support/config-file.ts';
import type { ReadyDocument } from '../support/documents.ts';

const proxying = suite<{ a?: TestUpstream; b?: TestUpstream; sluice?: SluiceProcess; port?: number }>('proxying');

proxying.before(async (ctx) => {
  ctx.a = await startUpstream('a');
  ctx.b = await startUpstream('b');
  // `healthy` needs one healthy backend; the weights test needs both, in both listener threads.
  ({ sluice: ctx.sluice, port: ctx.port } = await startRouting(
    [
      '-c',
      writeConfig(
        testConfig([
          { port: ctx.a.port, weight: 3 },
          { port: ctx.b.port, weight: 1 },
        ]),
      ),
    ],
    2,
    2,
  ));
});

proxying.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  await ctx.a?.close();
  await ctx.b?.close();
  killAll();
});

proxying('weights 3:1 share the traffic 75% / 25% within ±7%', async (ctx) => {
  const counts: Record<string, number> = { 'a\n': 0, 'b\n': 0 };
  const total = 400;
  for (let i = 0; i < total; i++) {
    const answer = await get(ctx.port!, `/item/${i}`);
    assert.is(answer.status, 200);
    counts[answer.body] = (counts[answer.body] ?? 0) + 1;
  }
  const shareA = counts['a\n']! / total;
  assert.ok(Math.abs(shareA - 0.75) <= 0.07, `share of a was ${shareA}`);
  assert.is(counts['a\n']! + counts['b\n']!, total);
});

proxying('the upstream sees the path, Host, X-Forwarded-For and Via, not hop-by-hop headers', async (ctx) => {
  ctx.a!.received.length = 0;
  ctx.b!.received.length = 0;
  const answer = await get(ctx.port!, '/echo?q=1', {
    headers: { host: 'example.test', connection: 'x-secret', 'x-secret': 'drop me', 'keep-alive': 'timeout=5' },
  });
  assert.is(answer.status, 200);
  const [seen] = [...ctx.a!.received, ...ctx.b!.received];
  assert.ok(seen);
  assert.is(seen.url, '/echo?q=1');
  assert.is(seen.headers.host, 'example.test');
  assert.is(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.is(seen.headers['x-forwarded-host'], 'example.test');
  assert.is(seen.headers['x-forwarded-proto'], 'http');
  assert.is(seen.headers.via, '1.1 sluice');
  assert.is(seen.headers['x-secret'], undefined);
  assert.is(seen.headers['keep-alive'], undefined);
});

proxying('a request that already passed through sluice is a loop: 508, never forwarded', async (ctx) => {
  const before = ctx.a!.received.length + ctx.b!.received.length;
  const answer = await get(ctx.port!, '/loop', { headers: { via: '1.1 sluice' } });
  assert.is(answer.status, 508);
  assert.is(ctx.a!.received.length + ctx.b!.received.length, before);
});

proxying('/health, /ready and /live are answered by the listener, never forwarded', async (ctx) => {
  const before = ctx.a!.received.length + ctx.b!.received.length;
  const health = await get(ctx.port!, '/health');
  assert.is(health.status, 200);
  assert.equal(JSON.parse(health.body), { status: 'healthy', state: 'healthy' });
  const ready = await get(ctx.port!, '/ready');
  assert.is(ready.status, 200);
  assert.equal(JSON.parse(ready.body), {
    ready: true,
    checks: { backends_available: true, pool_healthy: true, cache_healthy: true },
  });
  const live = await get(ctx.port!, '/live');
  assert.is(live.status, 200);
  const head = await get(ctx.port!, '/health', { method: 'HEAD' });
  assert.is(head.status, 200);
  assert.is(head.body, '');
  const post = await get(ctx.port!, '/health', { method: 'POST' });
  assert.is(post.status, 405);
  assert.is(ctx.a!.received.length + ctx.b!.received.length, before);
});

proxying.run();

const readiness = suite<{ only?: TestUpstream; sluice?: SluiceProcess; port?: number }>('readiness');

readiness.before(async (ctx) => {
  ctx.only = await startUpstream('only');
  ctx.sluice = startSluice(['-c', writeConfig(testConfig([{ port: ctx.only.port }], { workers: 1 }))]);
  ctx.port = await ctx.sluice.port();
  await ctx.sluice.waitForLog(transitionTo('healthy'));
});

readiness.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  await ctx.only?.close();
  killAll();
});

readiness(
  '/ready flips to 503 when the only backend dies and back to 200 when it returns; /health stays 200',
  async (ctx) => {
    const sluice = ctx.sluice!;
    const isFlipTo = (to: string) => (l: LogLine) => l['actor'] === 'health-checker' && l['to'] === to;
    await ctx.only!.close();
    const downLine = await sluice.waitForLog(isFlipTo('unhealthy'));
    const down = await until(
      () => get(ctx.port!, '/ready'),
      (a) => a.status === 503,
    );
    assert.equal(JSON.parse(down.body), {
      ready: false,
      checks: { backends_available: false, pool_healthy: true, cache_healthy: true },
    });
    assert.is((await get(ctx.port!, '/health')).status, 200, 'losing backends keeps the lifecycle healthy');
    const proxied = await get(ctx.port!, '/anything');
    assert.is(proxied.status, 502);

    await ctx.only!.reopen();
    await sluice.waitForLog(isFlipTo('healthy'), 10_000, sluice.lines.indexOf(downLine) + 1);
    const up = await until(
      () => get(ctx.port!, '/ready'),
      (a) => a.status === 200,
    );
    assert.equal((JSON.parse(up.body) as ReadyDocument).ready, true);
    assert.is((await get(ctx.port!, '/anything')).body, 'only\n');
  },
);

readiness.run();
