/**
 * The published package works for a consumer: pack it, install the tarball
 * in an empty project, run an embedding program and `npx sluice --help`.
 * (Node will not strip types under node_modules: this proves dist/ is used.)
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoRoot } from './support/sluice-process.ts';
import { tempDir } from './support/config-file.ts';

const run = promisify(execFile);
// The consumer must not inherit this repository's settings (conditions, npm's run-script variables).
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('npm_') && key !== 'NODE_OPTIONS'));

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
  const { stdout: packed } = await run('npm', ['pack', '--silent', '--pack-destination', work], { cwd: repoRoot, env: cleanEnv, timeout: 120_000 });
  const tarball = join(work, packed.trim().split('\n').at(-1)!);
  const consumer = join(work, 'consumer');
  await run('mkdir', ['-p', consumer]);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--silent', tarball], { cwd: consumer, env: cleanEnv, timeout: 300_000 });
  writeFileSync(join(consumer, 'embed.mjs'), consumerProgram);
  const embedded = await run(process.execPath, ['embed.mjs'], { cwd: consumer, env: cleanEnv, timeout: 60_000 });
  assert.equal(JSON.parse(embedded.stdout), [200, 'from the backend', true]);
  const help = await run('npx', ['--no-install', 'sluice', '--help'], { cwd: consumer, env: cleanEnv, timeout: 60_000 });
  assert.match(help.stdout, /^Usage: sluice \[OPTIONS\]/);
});

test.run();
