/** The `cache` section and `route.cache` as the CLI checks them (`-t`). */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';

const main = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
const check = (file: string) =>
  spawnSync(process.execPath, [main, '-t', '-c', file], { encoding: 'utf8', timeout: 10_000 });
const base = testConfig([{ port: 9 }]);

test('-t creates the cache directory, relative to the config file, and accepts it', () => {
  const file = writeConfig({ ...base, cache: { path: 'cache/here' } });
  const result = check(file);
  assert.is(result.status, 0, result.stderr);
  assert.ok(existsSync(join(file, '..', 'cache', 'here')));
});

test('-t refuses a cache path that cannot be created', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'a-file'), '');
  const file = writeConfig({ ...base, cache: { path: join(dir, 'a-file', 'cache') } });
  const result = check(file);
  assert.is(result.status, 2);
  assert.match(result.stderr, '$.cache.path: cannot create and write the directory: ENOTDIR');
});

test('route cache: true needs the cache section', () => {
  const file = writeConfig({ ...base, routes: [{ match: {}, upstream: 'default', cache: true }] });
  const result = check(file);
  assert.is(result.status, 2);
  assert.match(result.stderr, '$.routes[0].cache: cache: true needs the top-level cache section');
});

test('cache sizes are whole MiB, at least 1', () => {
  const file = writeConfig({ ...base, cache: { path: 'c', max_size_mb: 0 } });
  const result = check(file);
  assert.is(result.status, 2);
  assert.match(result.stderr, '$.cache.max_size_mb');
});

test('a reload keeps the running cache section and says it needs a restart', async () => {
  const { planReload } = await import('../../src/config/reload.ts');
  const { parseConfig } = await import('../../src/config/load.ts');
  const running = parseConfig({ ...base, cache: { path: '/var/cache/a' } }, 'running');
  const next = parseConfig({ ...base, cache: { path: '/var/cache/b', max_size_mb: 5 } }, 'next');
  const plan = planReload(running, next);
  assert.equal(plan.needsRestart, ['$.cache']);
  assert.equal(plan.effective.cache, running.cache);
});

test.run();
