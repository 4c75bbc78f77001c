/**
 * One store for every listener thread: coalescing across two threads, a
 * hit in one thread for what the other stored, eviction at the size bound,
 * and the admin side (purge, /status, /metrics, `sluice cache purge`).
 * Which thread served a request is read from the access log's `thread`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { CacheStatus, StatusDocument } from '../support/documents.ts';
import { get, until } from '../support/http.ts';
import { answer, startOrigin, type Origin } from '../support/origin.ts';
import { killAll, startRouting, stopSluice, type SluiceProcess } from '../support/sluice-process.ts';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';

const TOKEN = 'cache-admin-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const mainFile = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

interface Proxy {
  sluice: SluiceProcess;
  port: number;
  adminPort: number;
  accessLog: string;
  configFile: string;
}

async function startProxy(origin: Origin, cache: Record<string, unknown>): Promise<Proxy> {
  const dir = tempDir();
  const accessLog = join(dir, 'access.log');
  const configFile = writeConfig({
    ...testConfig([{ port: origin.port }], { startup_timeout_ms: 20_000 }),
    cache: { path: join(dir, 'cache'), ...cache },
    access_log: { file: accessLog },
    admin: { listen_port: 0, token: TOKEN },
  });
  const { sluice, port } = await startRouting(['-c', configFile], 2, 1);
  const adminPort = (await sluice.waitForLog((l) => l['event'] === 'admin.listening'))['port'] as number;
  return { sluice, port, adminPort, accessLog, configFile };
}

/** The `cache` part of the admin's /status; a /status without one fails the test. */
async function cacheStatus(proxy: Proxy): Promise<CacheStatus> {
  const document = JSON.parse((await get(proxy.adminPort, '/status', { headers: auth })).body) as StatusDocument;
  if (!document.cache) throw new Error('/status has no cache part');
  return document.cache;
}

/** The access-log lines of `path` (written in batches: polled until `count` are there). */
async function logged(proxy: Proxy, path: string, count: number): Promise<Record<string, unknown>[]> {
  const read = () =>
    readFileSync(proxy.accessLog, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line['path'] === path);
  return until(read, (lines) => lines.length >= count, 100, 50);
}

const shared = suite<{ origin?: Origin; proxy?: Proxy }>('one store for every thread');

shared.before(async (ctx) => {
  ctx.origin = await startOrigin();
  ctx.proxy = await startProxy(ctx.origin, { max_size_mb: 64 });
});

shared.after(async (ctx) => {
  await stopSluice(ctx.proxy?.sluice);
  killAll();
  await ctx.origin?.close();
});

shared(
  '200 concurrent clients on two listener threads missing one key make exactly 1 upstream request',
  async ({ origin, proxy }) => {
    origin!.on('/coalesced', (_req, res) => {
      // Slow enough that every client asks while the first request is still upstream.
      setTimeout(() => answer('one answer', { 'cache-control': 'max-age=60' })(_req, res), 700);
    });
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => get(proxy!.port, '/coalesced', { timeoutMs: 10_000 })),
    );
    assert.is(origin!.count('/coalesced'), 1);
    assert.ok(answers.every((a) => a.status === 200 && a.body === 'one answer'));
    const statuses = new Set(answers.map((a) => a.headers['cache-status']));
    assert.equal([...statuses].sort(), ['sluice; fwd=miss; stored', 'sluice; hit']);
    const threads = new Set((await logged(proxy!, '/coalesced', 200)).map((line) => line['thread']));
    assert.is(threads.size, 2, 'both listener threads served some of them');
  },
);

shared('an entry stored by one thread is a hit in the other', async ({ origin, proxy }) => {
  origin!.on('/across', answer('across', { 'cache-control': 'max-age=60' }));
  const first = await get(proxy!.port, '/across');
  assert.is(first.headers['cache-status'], 'sluice; fwd=miss; stored');
  const [stored] = await logged(proxy!, '/across', 1);
  // New connections spread over both threads: ask until the other thread has answered.
  for (let i = 2; i <= 40; i++) {
    const again = await get(proxy!.port, '/across');
    assert.is(again.headers['cache-status'], 'sluice; hit');
    const lines = await logged(proxy!, '/across', i);
    if (lines.some((line) => line['thread'] !== stored!['thread'])) break;
  }
  const lines = await logged(proxy!, '/across', 1);
  assert.ok(
    lines.some((line) => line['thread'] !== stored!['thread']),
    'the other thread answered',
  );
  assert.is(origin!.count('/across'), 1);
});

shared('DELETE /cache?url=… purges every variant of one URL: 200 {"purged": N}', async ({ origin, proxy }) => {
  origin!.on('/purge-me', (req, res) =>
    answer(`v=${String(req.headers['x-v'])}`, { 'cache-control': 'max-age=60', vary: 'x-v' })(req, res),
  );
  origin!.on('/keep-me', answer('kept', { 'cache-control': 'max-age=60' }));
  await get(proxy!.port, '/purge-me', { headers: { 'x-v': '1' } });
  await get(proxy!.port, '/purge-me', { headers: { 'x-v': '2' } });
  await get(proxy!.port, '/keep-me');
  assert.is((await get(proxy!.port, '/purge-me', { headers: { 'x-v': '2' } })).headers['cache-status'], 'sluice; hit');
  const url = encodeURIComponent(`http://127.0.0.1:${proxy!.port}/purge-me`);
  assert.is((await get(proxy!.adminPort, `/cache?url=${url}`, { method: 'DELETE' })).status, 401);
  const purged = await get(proxy!.adminPort, `/cache?url=${url}`, { method: 'DELETE', headers: auth });
  assert.is(purged.status, 200);
  assert.equal(JSON.parse(purged.body), { purged: 2 });
  assert.is(
    (await get(proxy!.port, '/purge-me', { headers: { 'x-v': '1' } })).headers['cache-status'],
    'sluice; fwd=miss; stored',
  );
  assert.is((await get(proxy!.port, '/keep-me')).headers['cache-status'], 'sluice; hit');
});

shared('/status reports size, entries and hit ratio; /metrics the cache series', async ({ origin, proxy }) => {
  origin!.on('/counted', answer('counted', { 'cache-control': 'max-age=60' }));
  await get(proxy!.port, '/counted');
  await get(proxy!.port, '/counted');
  // The threads add their counters to the store every second.
  const status = await until(
    () => cacheStatus(proxy!),
    (cache) => cache.requests.hit >= 1 && cache.requests.miss >= 1,
  );
  assert.ok(status.size_bytes > 0);
  assert.ok(status.entries >= 1);
  assert.is(status.max_size_bytes, 64 * 1024 * 1024);
  assert.ok(status.hit_ratio !== null && status.hit_ratio > 0 && status.hit_ratio < 1);
  const metrics = (await get(proxy!.adminPort, '/metrics', { headers: auth })).body;
  assert.match(metrics, /\nsluice_cache_requests_total\{result="hit"\} [1-9]/);
  assert.match(metrics, /\nsluice_cache_requests_total\{result="miss"\} [1-9]/);
  assert.match(metrics, /\nsluice_cache_requests_total\{result="revalidated"\} \d+/);
  assert.match(metrics, /\nsluice_cache_bytes [1-9]/);
  assert.match(metrics, /\nsluice_cache_evictions_total 0/);
});

shared('`sluice cache purge URL` and `--all` call the admin API', async ({ origin, proxy }) => {
  origin!.on('/cli-purge', answer('cli', { 'cache-control': 'max-age=60' }));
  await get(proxy!.port, '/cli-purge');
  // Not spawnSync: this process is the origin, and must go on answering health checks meanwhile.
  const admin = `http://127.0.0.1:${proxy!.adminPort}`;
  const cli = (...args: string[]) =>
    promisify(execFile)(
      process.execPath,
      [mainFile, 'cache', 'purge', ...args, '-c', proxy!.configFile, '--admin', admin],
      { timeout: 10_000 },
    );
  const one = await cli(`http://127.0.0.1:${proxy!.port}/cli-purge`);
  assert.is(one.stdout, `Purged 1 entry for http://127.0.0.1:${proxy!.port}/cli-purge\n`);
  assert.is((await get(proxy!.port, '/cli-purge')).headers['cache-status'], 'sluice; fwd=miss; stored');
  const all = await cli('--all');
  assert.match(all.stdout, /^Purged [1-9]\d* entr/);
  assert.is((await get(proxy!.port, '/cli-purge')).headers['cache-status'], 'sluice; fwd=miss; stored');
});

shared.run();

const bounded = suite<{ origin?: Origin; proxy?: Proxy }>('eviction at the size bound');

bounded.before(async (ctx) => {
  ctx.origin = await startOrigin();
  ctx.proxy = await startProxy(ctx.origin, { max_size_mb: 1, max_object_mb: 1 });
});

bounded.after(async (ctx) => {
  await stopSluice(ctx.proxy?.sluice);
  killAll();
  await ctx.origin?.close();
});

bounded('past max_size_mb the least recently used entry is evicted', async ({ origin, proxy }) => {
  const body = 'e'.repeat(400 * 1024);
  for (const name of ['a', 'b', 'c']) origin!.on(`/evict-${name}`, answer(body, { 'cache-control': 'max-age=600' }));
  const status = async (path: string) => (await get(proxy!.port, path)).headers['cache-status'];
  assert.is(await status('/evict-a'), 'sluice; fwd=miss; stored');
  assert.is(await status('/evict-b'), 'sluice; fwd=miss; stored');
  // A use is recorded when the last one is over a second old (a hit does not write each time).
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  assert.is(await status('/evict-a'), 'sluice; hit');
  // Three entries of 400 KiB are over 1 MiB: /evict-b, the least recently used, goes.
  assert.is(await status('/evict-c'), 'sluice; fwd=miss; stored');
  const figures = await until(
    () => cacheStatus(proxy!),
    (cache) => cache.evictions >= 1,
  );
  assert.ok(figures.size_bytes <= 1024 * 1024);
  assert.is(await status('/evict-a'), 'sluice; hit');
  assert.is(await status('/evict-c'), 'sluice; hit');
  assert.is(await status('/evict-b'), 'sluice; fwd=miss; stored');
  const metrics = (await get(proxy!.adminPort, '/metrics', { headers: auth })).body;
  assert.match(metrics, /\nsluice_cache_evictions_total [1-9]/);
});

bounded.run();

const timed = suite<{ origin?: Origin; proxy?: Proxy }>('lock_timeout_ms');

timed.before(async (ctx) => {
  ctx.origin = await startOrigin();
  ctx.proxy = await startProxy(ctx.origin, { lock_timeout_ms: 300 });
});

timed.after(async (ctx) => {
  await stopSluice(ctx.proxy?.sluice);
  killAll();
  await ctx.origin?.close();
});

timed(
  'a miss waits for another request of the key at most lock_timeout_ms, then goes upstream itself',
  async ({ origin, proxy }) => {
    let calls = 0;
    origin!.on('/slow', (req, res) => {
      const call = ++calls;
      // The first answer takes far longer than the lock timeout; the second comes at once.
      setTimeout(() => answer(`call ${call}`, { 'cache-control': 'max-age=60' })(req, res), call === 1 ? 3_000 : 0);
    });
    const first = get(proxy!.port, '/slow', { timeoutMs: 10_000 });
    await until(
      () => origin!.count('/slow'),
      (n) => n === 1,
    );
    const startedAt = Date.now();
    const second = await get(proxy!.port, '/slow', { timeoutMs: 10_000 });
    const waited = Date.now() - startedAt;
    assert.is(second.body, 'call 2');
    assert.ok(waited >= 250 && waited < 2_500, `waited ${waited} ms`);
    assert.is((await first).body, 'call 1');
    assert.is(origin!.count('/slow'), 2);
  },
);

timed.run();
