/**
 * Start-up time (issue #15): the command line boots the pool, health-checker
 * and listener threads as soon as the config is loaded, before the main
 * thread loads the supervisor, and the supervisor adopts those threads
 * instead of starting more. `-t` (checking the config) starts none.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { get } from './support/http.ts';
import { exitWithin, killAll, startNode, transitionTo } from './support/sluice-process.ts';
import { startUpstream, type TestUpstream } from './support/upstream.ts';
import { tempDir, testConfig, writeConfig } from './support/config-file.ts';

const recorder = fileURLToPath(new URL('./support/record-spawns.ts', import.meta.url));
const mainFile = fileURLToPath(new URL('../src/main.ts', import.meta.url));
let upstream: TestUpstream;

test.before(async () => {
  upstream = await startUpstream('a');
});
test.after(async () => {
  killAll();
  await upstream.close();
});

/** The recorded lines in order: `spawn` with the worker's name, `load` with a module's URL. */
function recorded(file: string): { kind: string; what: string }[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [kind = '', what = ''] = line.split('\t');
      return { kind, what };
    });
}

test('the actor threads boot before the supervisor loads, and are not started twice', async () => {
  const file = join(tempDir(), 'spawns.tsv');
  const config = writeConfig(testConfig([{ port: upstream.port }], { workers: 2 }));
  const sluice = startNode(['--import', recorder, mainFile, '-c', config], { env: { SLUICE_TEST_SPAWNS_FILE: file } });
  await sluice.waitForLog(transitionTo('healthy'));
  assert.is((await get(await sluice.port(), '/')).status, 200);
  sluice.kill('SIGTERM');
  assert.is((await exitWithin(sluice)).code, 0);

  const lines = recorded(file);
  const spawned = lines.filter((line) => line.kind === 'spawn').map((line) => line.what);
  assert.equal(spawned.sort(), ['sluice-health-checker-0', 'sluice-listener-0', 'sluice-listener-1', 'sluice-pool-0']);
  const supervisorLoaded = lines.findIndex((line) => line.what.endsWith('/src/supervisor/supervisor.ts'));
  const lastSpawn = lines.findLastIndex((line) => line.kind === 'spawn');
  assert.ok(supervisorLoaded > 0, 'the supervisor loaded');
  assert.ok(lastSpawn < supervisorLoaded, 'every thread was started before the supervisor loaded');
});

test('-t checks the config without starting a thread', async () => {
  const file = join(tempDir(), 'spawns.tsv');
  const config = writeConfig(testConfig([{ port: upstream.port }], { workers: 2 }));
  const check = startNode(['--import', recorder, mainFile, '-t', '-c', config], {
    env: { SLUICE_TEST_SPAWNS_FILE: file },
  });
  assert.is((await exitWithin(check)).code, 0);
  assert.equal(
    recorded(file).filter((line) => line.kind === 'spawn'),
    [],
  );
});

test.run();
