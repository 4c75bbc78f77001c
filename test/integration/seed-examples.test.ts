/**
 * Every example of the seed (../shared/seed/start_stop.md), translated in
 * examples/ and shown in docs/embedding.md, run here as a real program.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort, get, tryConnect, until } from '../support/http.ts';
import {
  exitWithin,
  killAll,
  startNode,
  startSluice,
  transitionTo,
  type SluiceProcess,
} from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';
import type { ReadyDocument } from '../support/documents.ts';

const example = (name: string) => fileURLToPath(new URL(`../../examples/${name}`, import.meta.url));
const upstreams: TestUpstream[] = [];

test.after(async () => {
  killAll();
  await Promise.all(upstreams.map((u) => u.close()));
});

async function runExample(
  name: string,
  env: Record<string, string> = {},
  args: string[] = [],
): Promise<{ program: SluiceProcess; port: number; backend: TestUpstream }> {
  const backend = await startUpstream('seed-backend');
  upstreams.push(backend);
  const port = await freePort();
  const program = startNode([example(name), ...args], {
    env: { SLUICE_EXAMPLE_BACKEND: `127.0.0.1:${backend.port}`, SLUICE_EXAMPLE_PORT: String(port), ...env },
  });
  return { program, port, backend };
}

const printed = (text: string) => (l: { msg?: string; raw?: unknown }) => l.raw === true && l.msg === text;

test('basic startup: prints the seed line, proxies, stops on SIGTERM with exit 0', async () => {
  const { program, port } = await runExample('basic-startup.ts');
  await program.waitForLog(printed(`Starting proxy on port ${port}...`));
  await program.waitForLog(transitionTo('healthy'));
  assert.is((await get(port, '/hello')).body, 'seed-backend\n');
  program.kill('SIGTERM');
  assert.is((await exitWithin(program)).code, 0);
});

test('with a configuration file: the seed config format, loaded and served', async () => {
  const backend = await startUpstream('from-config');
  upstreams.push(backend);
  const config = writeConfig({
    proxy: { listen_port: 0, listen_host: '127.0.0.1', max_connections: 100 },
    backends: [{ address: '127.0.0.1', port: backend.port, weight: 1 }],
  });
  const program = startNode([example('config-file.ts'), config]);
  const port = await program.port();
  await program.waitForLog(transitionTo('healthy'));
  assert.is((await get(port, '/')).body, 'from-config\n');
  program.kill('SIGINT');
  assert.is((await exitWithin(program)).code, 0);
});

test('command line arguments: --help prints the usage; -p and -c start it', async () => {
  const execFileAsync = promisify(execFile);
  const help = await execFileAsync(process.execPath, [example('command-line.ts'), '--help']);
  assert.match(help.stdout, 'Usage: pingora-proxy [OPTIONS]');
  assert.match(help.stdout, '-p, --port PORT');
  const backend = await startUpstream('cli');
  upstreams.push(backend);
  const config = writeConfig({
    proxy: { listen_host: '127.0.0.1' },
    backends: [{ address: '127.0.0.1', port: backend.port }],
  });
  const port = await freePort();
  const program = startNode([example('command-line.ts'), '-p', String(port), '-c', config]);
  await program.waitForLog(transitionTo('healthy'));
  assert.is((await get(port, '/')).body, 'cli\n');
  program.kill('SIGTERM');
  assert.is((await exitWithin(program)).code, 0);
});

test('signal handling: SIGINT prints "Shutting down..." and the proxy drains and stops', async () => {
  const { program, port } = await runExample('signal-handling.ts');
  await program.waitForLog(transitionTo('healthy'));
  program.kill('SIGINT');
  await program.waitForLog(printed('Shutting down...'));
  await program.waitForLog((l) => l.msg === 'Shutdown complete');
  assert.is((await exitWithin(program)).code, 0);
  assert.is(await tryConnect(port), 'ECONNREFUSED');
});

test('graceful shutdown: the in-flight request completes, then "Shutdown complete"', async () => {
  const { program, port, backend } = await runExample('graceful-shutdown.ts');
  await program.waitForLog(transitionTo('healthy'));
  const inFlight = get(port, backend.holdPath);
  await backend.nextHeld();
  program.kill('SIGTERM');
  await program.waitForLog(printed('Initiating graceful shutdown...'));
  await program.waitForLog((l) => l['event'] === 'listeners.closed');
  backend.release();
  assert.is((await inFlight).status, 200);
  await program.waitForLog(printed('Shutdown complete'));
  assert.is((await exitWithin(program)).code, 0);
});

test('lifecycle hooks: onStart before accepting, onStop after accepting stopped', async () => {
  const { program, port } = await runExample('lifecycle-hooks.ts');
  const started = await program.waitForLog(printed(`Proxy started on port ${port}`));
  await program.waitForLog(transitionTo('healthy'));
  const listening = program.lines.find((l) => l['event'] === 'listeners.listening')!;
  assert.ok(
    program.lines.indexOf(started) < program.lines.indexOf(listening),
    'onStart ran before the listeners bound',
  );
  program.kill('SIGTERM');
  const stopping = await program.waitForLog(printed('Proxy stopping...'));
  const stoppedAccepting = program.lines.find((l) => l['event'] === 'listeners.closed')!;
  assert.ok(
    program.lines.indexOf(stoppedAccepting) < program.lines.indexOf(stopping),
    'onStop ran after accepting stopped',
  );
  assert.is((await exitWithin(program)).code, 0);
});

test('startup health check: healthy within the wait, or "Failed to start: StartupTimeout" and exit 1', async () => {
  const { program } = await runExample('startup-health-check.ts');
  await program.waitForLog(printed('Proxy is healthy and accepting connections'));
  program.kill('SIGTERM');
  assert.is((await exitWithin(program)).code, 0);

  const failing = startNode([example('startup-health-check.ts')], {
    env: {
      SLUICE_EXAMPLE_BACKEND: '127.0.0.1:1',
      SLUICE_EXAMPLE_PORT: String(await freePort()),
      SLUICE_EXAMPLE_WAIT_MS: '300',
    },
  });
  await failing.waitForLog(printed('Failed to start: StartupTimeout'));
  assert.is((await exitWithin(failing)).code, 1);
});

test('readiness endpoint as a filter: /readyz answered in the listener thread, 200 then 503', async () => {
  const backend = await startUpstream('ready');
  upstreams.push(backend);
  const config = { ...testConfig([{ port: backend.port }], { request_hooks: example('readiness-filter.ts') }) };
  const sluice = startSluice(['-c', writeConfig(config)]);
  const port = await sluice.port();
  await sluice.waitForLog(transitionTo('healthy'));
  const ready = await get(port, '/readyz');
  assert.is(ready.status, 200);
  assert.equal(JSON.parse(ready.body), {
    ready: true,
    checks: { backends_available: true, pool_healthy: true, cache_healthy: true },
  });
  assert.not.ok(
    backend.received.some((r) => r.url === '/readyz'),
    'never forwarded',
  );
  await backend.close();
  await sluice.waitForLog((l) => l['actor'] === 'health-checker' && l['to'] === 'unhealthy');
  const down = await until(
    () => get(port, '/readyz'),
    (a) => a.status === 503,
  );
  assert.is((JSON.parse(down.body) as ReadyDocument).checks.backends_available, false);
  sluice.kill('SIGTERM');
  await exitWithin(sluice);
});

test('PID file and the status script: running and healthy, then removed and "no PID file"', async () => {
  const pidFile = join(tempDir(), 'sluice.pid');
  const { program, port } = await runExample('pid-file.ts', { SLUICE_EXAMPLE_PID_FILE: pidFile });
  await program.waitForLog(transitionTo('healthy'));
  assert.is(readFileSync(pidFile, 'utf8'), `${program.pid}\n`);
  const execFileAsync = promisify(execFile);
  const env = { ...process.env, PID_FILE: pidFile, HEALTH_URL: `http://127.0.0.1:${port}/health` };
  const status = await execFileAsync('bash', [example('check_status.sh')], { env });
  assert.is(status.stdout.trim(), `Proxy running and healthy (PID: ${program.pid})`);
  program.kill('SIGTERM');
  assert.is((await exitWithin(program)).code, 0);
  assert.not.ok(existsSync(pidFile));
  const after = await execFileAsync('bash', [example('check_status.sh')], { env }).catch(
    (error: unknown) => error as { code: number; stdout: string },
  );
  assert.is(after.stdout.trim(), 'Proxy not running (no PID file)');
  assert.is((after as { code?: number }).code, 1);
});

test("the README's library snippet runs from a clone as shown (only its two ports changed)", async () => {
  const backend = await startUpstream('readme');
  upstreams.push(backend);
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const snippet = /## Use it as a library\n\n```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(snippet, 'the README has the snippet');
  const port = await freePort();
  const program = snippet
    .replace('listen_port: 8080', `listen_port: ${port}`)
    .replace("'127.0.0.1', 3000", `'127.0.0.1', ${backend.port}`);
  // Inside the repository, as a user's file in a clone would be: `from 'sluice'` resolves to the package itself.
  const dir = join(fileURLToPath(new URL('../../.tmp/', import.meta.url)), `readme-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'library.ts');
  writeFileSync(file, program);
  try {
    const run = startNode([file]);
    await run.waitForLog(transitionTo('healthy'));
    await run.waitForLog((l) => l.msg === 'Shutdown complete');
    assert.is((await exitWithin(run)).code, 0, run.stderr());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
