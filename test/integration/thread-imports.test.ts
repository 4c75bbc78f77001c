/**
 * Each thread loads only what it needs (start-up time and memory, issue #15):
 * no worker thread loads zod, undici, prom-client, pino-pretty or xstate
 * while the proxy starts and idles, the main thread loads neither undici nor
 * prom-client, and every thread runs with the compile cache sluice enables.
 * A subcommand (`sluice restart`: part of a hot restart's time) loads none
 * of the proxy's code.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { get } from '../support/http.ts';
import { exitWithin, killAll, startNode, transitionTo } from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';

const recorder = fileURLToPath(new URL('../support/record-imports.ts', import.meta.url));
const mainFile = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
let upstream: TestUpstream;

test.before(async () => {
  upstream = await startUpstream('a');
});
test.after(async () => {
  killAll();
  await upstream.close();
});

interface Thread {
  kind: string;
  cacheDirs: Set<string>;
  packages: Set<string>;
  /** The `node:` modules it imported. */
  builtins: Set<string>;
  /** From the thread's first module of sluice's own on. */
  counted: boolean;
}

/** Threads by id: the actor each runs (from its entry module), the packages it loaded, its compile cache. */
function threadsOf(file: string): Map<string, Thread> {
  const threads = new Map<string, Thread>();
  for (const line of readFileSync(file, 'utf8').trim().split('\n')) {
    const [id, cacheDir, url] = line.split('\t') as [string, string, string];
    const thread = threads.get(id) ?? {
      kind: id === '0' ? 'main' : '?',
      cacheDirs: new Set(),
      packages: new Set(),
      builtins: new Set(),
      counted: false,
    };
    threads.set(id, thread);
    const actor = /\/src\/actors\/([a-z-]+)\.worker\.ts$/.exec(url);
    if (actor) thread.kind = actor[1]!;
    const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    if (pkg) thread.packages.add(pkg[1]!);
    if (url.startsWith('node:')) thread.builtins.add(url);
    // main.ts and its static imports load before it can enable the cache: the modules from run.ts on tell.
    if (actor || url.endsWith('/src/cli/run.ts')) thread.counted = true;
    if (thread.counted) thread.cacheDirs.add(cacheDir);
  }
  return threads;
}

test('worker threads load no zod, undici, prom-client, pino-pretty or xstate, the main thread no node:http; all use the compile cache', async () => {
  const imports = join(tempDir(), 'imports.tsv');
  const config = writeConfig(testConfig([{ port: upstream.port }], { workers: 2 }));
  const sluice = startNode(['--import', recorder, mainFile, '-c', config], {
    // Unset: sluice enables the cache itself, and its threads inherit it.
    env: { SLUICE_TEST_IMPORTS_FILE: imports, NODE_COMPILE_CACHE: undefined },
  });
  await sluice.waitForLog(transitionTo('healthy'));
  const port = await sluice.port();
  assert.is((await get(port, '/')).status, 200);
  sluice.kill('SIGTERM');
  assert.is((await exitWithin(sluice)).code, 0);

  const threads = [...threadsOf(imports).values()];
  assert.equal(threads.map((t) => t.kind).sort(), ['health-checker', 'listener', 'listener', 'main', 'pool']);
  for (const thread of threads) {
    const heavy = ['zod', 'undici', 'prom-client', 'pino-pretty', 'xstate'].filter((p) => thread.packages.has(p));
    if (thread.kind === 'main') {
      assert.equal(
        heavy.filter((p) => p !== 'zod' && p !== 'xstate'),
        [],
        'main thread',
      );
      // node:http costs the main thread ~30 ms to load; only the demo's upstreams and the admin server need it.
      assert.not.ok(thread.builtins.has('node:http'), 'the main thread of a proxy run loads no node:http');
    } else assert.equal(heavy, [], `${thread.kind} thread`);
    assert.equal(
      [...thread.cacheDirs].filter((dir) => dir === ''),
      [],
      `${thread.kind} thread without the compile cache`,
    );
  }
});

test('sluice restart loads neither the supervisor nor xstate, nor undici without an admin listener', async () => {
  const imports = join(tempDir(), 'imports.tsv');
  const pidFile = join(tempDir(), 'none.pid');
  const command = startNode(['--import', recorder, mainFile, 'restart', '--pid-file', pidFile], {
    env: { SLUICE_TEST_IMPORTS_FILE: imports },
  });
  assert.is((await exitWithin(command)).code, 1); // no PID file: nothing to restart
  const urls = readFileSync(imports, 'utf8')
    .trim()
    .split('\n')
    .map((line) => line.split('\t')[2]!);
  assert.ok(
    urls.some((url) => url.endsWith('/src/cli/commands/restart.ts')),
    'the restart command ran',
  );
  const proxyCode = urls.filter((url) => /\/src\/(supervisor\/supervisor|cli\/run|machines\/)/.test(url));
  assert.equal(proxyCode, [], 'modules of the proxy run');
  const packages = urls.flatMap((url) => /\/node_modules\/([^/]+)\//.exec(url)?.[1] ?? []);
  assert.equal(
    packages.filter((p) => p === 'xstate' || p === 'undici'),
    [],
  );
});

test.run();
