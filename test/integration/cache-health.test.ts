/**
 * `cache_healthy` when the store's disk fills: a small tmpfs mounted by the
 * test holds the store; a file then takes the rest of its space. The
 * probes turn cache_healthy false in /ready, caching routes bypass the
 * cache (and nothing crashes: no SIGBUS, the store does not use a write
 * map); once the file is gone the store is opened again and serves.
 * Needs root to mount (the tests run as root here); skipped otherwise.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, openSync, closeSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ReadyDocument } from '../support/documents.ts';
import { get, until } from '../support/http.ts';
import { answer, startOrigin, type Origin } from '../support/origin.ts';
import { killAll, startRouting, stopSluice, type SluiceProcess } from '../support/sluice-process.ts';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';

let origin: Origin | undefined;
let sluice: SluiceProcess | undefined;
let mounted: string | undefined;

test.after(async () => {
  await stopSluice(sluice);
  killAll();
  await origin?.close();
  if (mounted) spawnSync('umount', [mounted]);
});

/** Writes zeros into `file` until the filesystem says ENOSPC. */
function fill(file: string): void {
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(64 * 1024);
  try {
    for (let i = 0; i < 100_000; i++) writeSync(fd, block);
    throw new Error('the tmpfs never filled');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
}

const ready = async (port: number) => {
  const answered = await get(port, '/ready');
  return { status: answered.status, cache: (JSON.parse(answered.body) as ReadyDocument).checks.cache_healthy };
};

test('a full disk turns cache_healthy false and bypasses the cache; freed space brings it back', async () => {
  const dir = tempDir();
  mounted = join(dir, 'tmpfs');
  mkdirSync(mounted);
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mounted], { encoding: 'utf8' });
  if (mount.status !== 0) {
    mounted = undefined;
    console.log(`skipped: cannot mount a tmpfs (${mount.stderr.trim()})`);
    return;
  }
  origin = await startOrigin();
  origin.on('/before', answer('before', { 'cache-control': 'max-age=600' }));
  origin.on('/while-full', answer('while full', { 'cache-control': 'max-age=600' }));
  origin.on('/after', answer('after', { 'cache-control': 'max-age=600' }));
  const large = 'L'.repeat(512 * 1024);
  origin.on('/large', answer(large, { 'cache-control': 'max-age=600' }));
  const config = {
    ...testConfig([{ port: origin.port }], { startup_timeout_ms: 20_000 }),
    cache: { path: join(mounted, 'cache'), max_size_mb: 64 },
  };
  let port: number;
  ({ sluice, port } = await startRouting(['-c', writeConfig(config)], 2, 1));
  assert.equal(
    await until(
      () => ready(port),
      (r) => r.status === 200,
    ),
    { status: 200, cache: true },
  );
  assert.is((await get(port, '/before')).headers['cache-status'], 'sluice; fwd=miss; stored');
  // The store commits after the response: the entry is there once a request hits it, and the disk fills only then.
  await until(
    () => get(port, '/before'),
    (r) => r.headers['cache-status'] === 'sluice; hit',
  );

  const mark = sluice.lines.length;
  const filler = join(mounted, 'filler');
  fill(filler);
  // Before the probes notice, a store write may meet the full disk itself: the client still gets it all.
  const whole = await get(port, '/large');
  assert.is(whole.body.length, large.length);
  for (const listener of [0, 1]) {
    const line = await sluice.waitForLog(
      (l) => l['event'] === 'cache.unhealthy' && l['listener'] === listener,
      10_000,
      mark,
    );
    // The probe's free-space check, or a commit the disk refused.
    assert.ok(['ENOSPC', 'CACHE_WRITE_FAILED'].includes(String(line['code'])), String(line['code']));
  }
  assert.equal(await ready(port), { status: 503, cache: false });
  for (let i = 0; i < 6; i++) {
    const bypassed = await get(port, '/while-full');
    assert.is(bypassed.status, 200);
    assert.is(bypassed.body, 'while full');
    assert.is(bypassed.headers['cache-status'], 'sluice; fwd=bypass');
  }

  const freed = sluice.lines.length;
  rmSync(filler);
  for (const listener of [0, 1])
    await sluice.waitForLog((l) => l['event'] === 'cache.healthy' && l['listener'] === listener, 10_000, freed);
  assert.equal(await ready(port), { status: 200, cache: true });
  assert.is((await get(port, '/before')).headers['cache-status'], 'sluice; hit');
  assert.is((await get(port, '/after')).headers['cache-status'], 'sluice; fwd=miss; stored');
  assert.is((await get(port, '/after')).headers['cache-status'], 'sluice; hit');
  assert.is(sluice.child.exitCode, null, 'still running');
  assert.not.ok(
    sluice.lines.some((l) => l['event'] === 'actor.failed'),
    'no thread failed',
  );
});

test.run();
