/**
 * Request hooks on the fast path that return promises: each request's hooks
 * see its own headers even though other requests were read into the
 * thread's shared buffer meanwhile, and a body that arrives while a hook
 * waits reaches the upstream whole.
 */
import { createHash } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { get } from '../support/http.ts';
import { killAll, type SluiceProcess, startRouting, stopSluice } from '../support/sluice-process.ts';
import { testConfig, writeConfig } from '../support/config-file.ts';
import { HEALTH_PATH } from '../support/upstream.ts';

const hooksModule = fileURLToPath(new URL('../fixtures/async-hooks.ts', import.meta.url));

interface Seen {
  probe: string | undefined;
  seenByHook: string | undefined;
  bodySha: string;
}

const asyncHooks = suite<{ upstream?: Server; port?: number; sluice?: SluiceProcess; seen: Seen[] }>(
  'asynchronous request hooks',
  { seen: [] },
);

asyncHooks.before(async (ctx) => {
  // An upstream that records each request's probe headers and a digest of its body.
  ctx.upstream = createServer((req, res) => {
    if (req.url === HEALTH_PATH) return void res.end();
    const hash = createHash('sha256');
    req.on('data', (chunk: Buffer) => hash.update(chunk));
    req.on('end', () => {
      const probe = req.headers['x-probe'] as string | undefined;
      ctx.seen.push({
        probe,
        seenByHook: req.headers['x-seen-by-hook'] as string | undefined,
        bodySha: hash.digest('hex'),
      });
      res.end('ok\n');
    });
  });
  await new Promise<void>((resolve) => ctx.upstream!.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const upstreamPort = (ctx.upstream.address() as AddressInfo).port;
  // One listener thread: every client shares its read buffer.
  const config = testConfig([{ port: upstreamPort }], { workers: 1, request_hooks: hooksModule });
  ({ sluice: ctx.sluice, port: ctx.port } = await startRouting(['-c', writeConfig(config)], 1, 1));
});

asyncHooks.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  await new Promise<void>((resolve) => (ctx.upstream ? ctx.upstream.close(() => resolve()) : resolve()));
  killAll();
});

asyncHooks('40 concurrent requests: every hook saw its own request, up and down', async (ctx) => {
  const probes = Array.from({ length: 40 }, (_, i) => `probe-${i}-${'x'.repeat(i)}`);
  const answers = await Promise.all(
    probes.map((probe) => get(ctx.port!, `/p/${probe.length}`, { headers: { 'x-probe': probe } })),
  );
  answers.forEach((answer, i) => {
    assert.is(answer.status, 200);
    assert.is(
      answer.headers['x-probe-echo'],
      `${probes[i]}/${probes[i]}`,
      'onRequestStart and responseFilter read this request',
    );
  });
  for (const probe of probes) {
    const seen = ctx.seen.find((s) => s.probe === probe);
    assert.ok(seen, `the upstream got ${probe}`);
    assert.is(seen.seenByHook, probe, 'upstreamRequestFilter read this request');
  }
});

asyncHooks('a body sent while the hooks wait reaches the upstream whole', async (ctx) => {
  const body = Buffer.alloc(300_000, 'b');
  for (let i = 0; i < body.length; i += 997) body[i] = i % 251;
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: ctx.port!,
        path: '/upload',
        method: 'POST',
        headers: { 'x-probe': 'upload', 'content-length': body.length },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
  assert.is(status, 200);
  const seen = ctx.seen.find((s) => s.probe === 'upload');
  assert.is(seen?.bodySha, createHash('sha256').update(body).digest('hex'));
});

asyncHooks.run();
