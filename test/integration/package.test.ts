/**
 * The published package works for a consumer: pack it, install the tarball
 * in an empty project, run an embedding program and `npx sluice --help`.
 * (Node will not strip types under node_modules: this proves dist/ is used.)
 * And what an older Node says, built or not: one line, never a TypeError.
 */
import { execFile, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoRoot } from '../support/sluice-process.ts';
import { tempDir } from '../support/config-file.ts';

const run = promisify(execFile);
// The consumer must not inherit this repository's settings (conditions, npm's run-script variables).
const cleanEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !key.startsWith('npm_') && key !== 'NODE_OPTIONS'),
);

const consumerProgram = `
import { createServer } from 'node:http';
import { HttpProxy, errorCodes } from 'sluice';

const backend = createServer((req, res) => res.end('from the backend\\n'));
await new Promise((resolve) => backend.listen(0, '127.0.0.1', resolve));
const proxy = HttpProxy.init({ listen_host: '127.0.0.1', listen_port: 0, workers: 1, log: { level: 'silent' } });
await proxy.addBackend('127.0.0.1', backend.address().port, 1);
const serving = proxy.serve();
await proxy.waitForHealthy(10000);
const answer = await fetch(\`http://127.0.0.1:\${proxy.port}/\`);
console.log(JSON.stringify([answer.status, (await answer.text()).trim(), Object.keys(errorCodes).length > 0]));
await proxy.shutdown();
await serving;
backend.close();
`;

test('npm pack → npm install → an embedding program and npx sluice --help work', async () => {
  const work = tempDir('sluice-pack-');
  const { stdout: packed } = await run('npm', ['pack', '--silent', '--pack-destination', work], {
    cwd: repoRoot,
    env: cleanEnv,
    timeout: 120_000,
  });
  const tarball = join(work, packed.trim().split('\n').at(-1)!);
  const consumer = join(work, 'consumer');
  await run('mkdir', ['-p', consumer]);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--silent', tarball], {
    cwd: consumer,
    env: cleanEnv,
    timeout: 300_000,
  });
  writeFileSync(join(consumer, 'embed.mjs'), consumerProgram);
  const embedded = await run(process.execPath, ['embed.mjs'], { cwd: consumer, env: cleanEnv, timeout: 60_000 });
  assert.equal(JSON.parse(embedded.stdout), [200, 'from the backend', true]);
  const help = await run('npx', ['--no-install', 'sluice', '--help'], {
    cwd: consumer,
    env: cleanEnv,
    timeout: 60_000,
  });
  assert.match(help.stdout, /^Usage: sluice \[OPTIONS\]/);
  const required = await run(process.execPath, ['-e', 'console.log(typeof require("sluice").HttpProxy.init)'], {
    cwd: consumer,
    env: cleanEnv,
  });
  assert.is(required.stdout.trim(), 'function', "require() reaches dist/ without the entry point's top-level await");

  if (!oldNode) return;
  // The built command and the library on an older Node: one clear line, not a TypeError from a dependency.
  const bin = await runToEnd(oldNode.path, [join(consumer, 'node_modules/sluice/dist/main.js'), '--help'], {
    cwd: consumer,
    env: cleanEnv,
  });
  assert.is(bin.code, 1);
  assert.is(bin.stderr, `sluice: needs Node.js 24 or newer (this is ${oldNode.version})\n`);
  const library = await runToEnd(oldNode.path, ['embed.mjs'], { cwd: consumer, env: cleanEnv });
  assert.is(library.code, 1);
  assert.match(library.stderr, `sluice needs Node.js 24 or newer (this is ${oldNode.version})`);
  assert.not.match(library.stderr, 'TypeError');
});

/** The machine's own node when it is older than 24 (Debian's is 20), to check what users of it see. */
const oldNode = (() => {
  const path = '/usr/bin/node';
  const found = spawnSync(path, ['--version'], { encoding: 'utf8' });
  // No output at all (undefined, whatever its type says) when the spawn itself failed: no such file.
  const version = (found.stdout as string | undefined)?.trim() ?? '';
  return found.status === 0 && Number(version.slice(1).split('.')[0]) < 24 ? { path, version } : undefined;
})();

async function runToEnd(file: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }) {
  try {
    const { stdout, stderr } = await run(file, args, { ...options, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('the entry point index.js re-exports every value of src/index.ts', async () => {
  const source = (await import('../../src/index.ts')) as Record<string, unknown>;
  const entry = (await import(new URL('../../index.js', import.meta.url).href)) as Record<string, unknown>;
  assert.equal(Object.keys(entry).sort(), Object.keys(source).sort());
  assert.is(entry['HttpProxy'], source['HttpProxy'], 'in a clone it is the sources themselves');
});

(oldNode ? test : test.skip.bind(test))(
  'npm run build on an older Node: exit 1 with "needs Node.js 24 or newer", before tsc runs',
  async () => {
    const env = { ...cleanEnv, PATH: `${dirname(oldNode!.path)}:${cleanEnv['PATH'] ?? ''}` };
    const build = await runToEnd('npm', ['run', '--silent', 'build'], { cwd: repoRoot, env });
    assert.is(build.code, 1);
    assert.match(build.stderr, `sluice: needs Node.js 24 or newer (this is ${oldNode!.version})`);
    assert.not.match(build.stderr, 'TypeError');
  },
);

test.run();
