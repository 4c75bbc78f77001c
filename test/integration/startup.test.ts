/** Starting up: the startup timeout, a port in use, and the PID file. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort, get, until } from '../support/http.ts';
import { exitWithin, killAll, killPids, repoRoot, startSluice, transitionTo } from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';
import type { ReadyDocument } from '../support/documents.ts';

const cleanups: (() => Promise<void> | void)[] = [];
test.after(async () => {
  killAll();
  for (const cleanup of cleanups) await cleanup();
});

async function upstream(): Promise<TestUpstream> {
  const u = await startUpstream('a');
  cleanups.push(() => u.close());
  return u;
}

/** A PID that surely names no live process: a child that has already exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid;
}

test('no healthy backend within startup_timeout_ms: StartupTimeout logged, PID file removed, exit 1', async () => {
  const pidFile = join(tempDir(), 'sluice.pid');
  const sluice = startSluice([
    '-c',
    writeConfig(testConfig([{ port: 1 }], { startup_timeout_ms: 400 })),
    '--pid-file',
    pidFile,
  ]);
  await sluice.waitForLog((l) => l['pid_file'] !== undefined && l['outcome'] === 'created');
  assert.ok(existsSync(pidFile));
  const { code } = await exitWithin(sluice);
  assert.is(code, 1);
  const failure = await sluice.waitForLog(
    (l) => typeof l.msg === 'string' && l.msg.startsWith('Failed to start: StartupTimeout'),
  );
  assert.is(failure['code'], 'SLUICE_STARTUP_TIMEOUT');
  assert.ok(
    sluice.lines.some((l) => l['from'] === 'starting' && l['to'] === 'stopped' && l['event'] === 'startupTimeout'),
  );
  assert.not.ok(existsSync(pidFile), 'the PID file is removed');
});

/** Listens on loopback until the file's cleanups run (its connections destroyed then); returns the port. */
async function serving(server: Server): Promise<number> {
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return (server.address() as { port: number }).port;
}

interface Probe {
  backend: string;
  reason: string;
}

test('a startup timeout names every backend with its last probe result, in the log and on stderr', async () => {
  const down = await freePort();
  const notFound = await serving(createHttpServer((_, res) => void res.writeHead(404).end()));
  // Accepts connections and never answers: the probe times out.
  const silent = await serving(
    createServer(() => {
      /* holds the connection open and never answers */
    }),
  );
  const backends = [
    { address: '127.0.0.1', port: down },
    { address: 'no-such-host.invalid', port: 80 },
    { address: '127.0.0.1', port: notFound },
    { address: '127.0.0.1', port: silent },
  ];
  const config = { ...testConfig([], { startup_timeout_ms: 5_000 }, { path: '/', timeout_ms: 300 }), backends };
  const sluice = startSluice(['-c', writeConfig(config)]);
  assert.is((await exitWithin(sluice)).code, 1);
  const expected = {
    [`127.0.0.1:${down}`]: 'ECONNREFUSED',
    'no-such-host.invalid:80': 'ENOTFOUND',
    [`127.0.0.1:${notFound}`]: 'status 404',
    [`127.0.0.1:${silent}`]: 'timeout',
  };
  const reported = Object.fromEntries(
    sluice.lines
      .filter((l) => l['event'] === 'backend.last_probe')
      .map((l) => [String(l['backend']), l['reason']] as const),
  );
  assert.equal(reported, expected);
  const failure = sluice.lines.find((l) => String(l.msg).startsWith('Failed to start: StartupTimeout'))!;
  assert.is(failure['code'], 'SLUICE_STARTUP_TIMEOUT');
  assert.equal(Object.fromEntries((failure['backends'] as Probe[]).map((b) => [b.backend, b.reason])), expected);
  const stderr = sluice.stderr();
  assert.match(stderr, /^sluice: failed to start: no healthy backend within 5000 ms \(/);
  for (const [backend, reason] of Object.entries(expected)) assert.match(stderr, `${backend}: ${reason}`);
  assert.is(stderr.split('\n').length, 2, 'one line');
});

test('require_healthy_backends false: healthy once bound, 502 past the startup timeout, then served', async () => {
  const backendPort = await freePort();
  // Long enough for the threads to bind on a loaded machine; the loop below outlasts it.
  const startupTimeoutMs = 3_000;
  const proxy = { require_healthy_backends: false, startup_timeout_ms: startupTimeoutMs, workers: 1 };
  const config = testConfig([{ port: backendPort }], proxy);
  const sluice = startSluice(['-c', writeConfig(config)]);
  const port = await sluice.port();
  const healthy = await sluice.waitForLog(transitionTo('healthy'));
  assert.is(healthy['event'], 'LISTENERS_BOUND');
  const healthyAt = Date.now();
  // Every request until well past the startup timeout gets 502, and the process stays up.
  let answered = 0;
  while (Date.now() - healthyAt < startupTimeoutMs + 200) {
    assert.is((await get(port, `/early-${answered++}`)).status, 502);
  }
  assert.ok(answered > 0);
  assert.is((await get(port, '/health')).status, 200);
  const ready = await get(port, '/ready');
  assert.is(ready.status, 503);
  assert.is((JSON.parse(ready.body) as ReadyDocument).checks.backends_available, false);
  assert.not.ok(sluice.lines.some((l) => String(l.msg).startsWith('Failed to start')));

  const backend = await startUpstream('late', backendPort);
  cleanups.push(() => backend.close());
  await until(
    () => get(port, '/ready'),
    (answer) => answer.status === 200,
  );
  assert.is(
    (
      await until(
        () => get(port, '/late'),
        (answer) => answer.status === 200,
      )
    ).body,
    'late\n',
  );
  sluice.kill('SIGTERM');
  assert.is((await exitWithin(sluice)).code, 0);
});

test('require_healthy_backends false without any backend: healthy, and requests get 503 with Retry-After', async () => {
  const sluice = startSluice(['-c', writeConfig(testConfig([], { require_healthy_backends: false, workers: 1 }))]);
  const port = await sluice.port();
  await sluice.waitForLog(transitionTo('healthy'));
  const answer = await get(port, '/');
  assert.is(answer.status, 503);
  assert.is(answer.headers['retry-after'], '1');
  sluice.kill('SIGTERM');
  assert.is((await exitWithin(sluice)).code, 0);
});

test('require_healthy_backends false: -d returns once the listeners are bound, with no backend up', async () => {
  const dir = tempDir();
  const pidFile = join(dir, 'sluice.pid');
  const proxy = { require_healthy_backends: false, pid_file: pidFile, workers: 1 };
  const config = testConfig([{ port: await freePort() }], proxy);
  const file = writeConfig({ ...config, log: { file: join(dir, 'sluice.log') } });
  const command = [join(repoRoot, 'src/main.ts'), '-d', '-c', file];
  const { stdout, stderr } = await promisify(execFile)(process.execPath, command, { timeout: 30_000 });
  const pid = Number(readFileSync(pidFile, 'utf8'));
  cleanups.push(() => killPids([pid]));
  assert.match(stdout + stderr, `sluice started (PID: ${pid})`);
  process.kill(pid, 'SIGTERM');
  await until(
    () => existsSync(pidFile),
    (exists) => !exists,
  );
});

test('the port already in use: exit 1 naming the port', async () => {
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen({ host: '127.0.0.1', port: 0 }, resolve));
  cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as { port: number }).port;
  const u = await upstream();
  const sluice = startSluice(['-c', writeConfig(testConfig([{ port: u.port }])), '-p', String(port)]);
  const { code } = await exitWithin(sluice);
  assert.is(code, 1);
  const failure = sluice.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('Failed to start'));
  assert.ok(failure, 'a failure line');
  assert.is(failure['code'], 'SLUICE_LISTEN_FAILED');
  assert.is(failure['cause'], 'EADDRINUSE');
  assert.match(String(failure['reason']), String(port));
});

test('PID file: written with our PID while running, removed on exit', async () => {
  const u = await upstream();
  const pidFile = join(tempDir(), 'run', 'sluice.pid');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(pidFile, '..'));
  const sluice = startSluice(['-c', writeConfig(testConfig([{ port: u.port }])), '--pid-file', pidFile]);
  await sluice.waitForLog(transitionTo('healthy'));
  assert.is(readFileSync(pidFile, 'utf8'), `${sluice.pid}\n`);
  sluice.kill('SIGTERM');
  assert.is((await exitWithin(sluice)).code, 0, JSON.stringify(sluice.lines) + sluice.stderr());
  assert.not.ok(existsSync(pidFile));
});

test('PID file owned by a live process: refused with exit 1 naming that PID, file untouched', async () => {
  const u = await upstream();
  const pidFile = join(tempDir(), 'sluice.pid');
  writeFileSync(pidFile, `${process.pid}\n`);
  const sluice = startSluice(['-c', writeConfig(testConfig([{ port: u.port }])), '--pid-file', pidFile]);
  const { code } = await exitWithin(sluice);
  assert.is(code, 1);
  const failure = sluice.lines.find((l) => l['code'] === 'SLUICE_PID_FILE_LOCKED');
  assert.ok(failure);
  assert.match(String(failure.msg), `running process ${process.pid}`);
  assert.is(readFileSync(pidFile, 'utf8'), `${process.pid}\n`);
});

test('a stale PID file is replaced', async () => {
  const u = await upstream();
  const pidFile = join(tempDir(), 'sluice.pid');
  writeFileSync(pidFile, `${deadPid()}\n`);
  const sluice = startSluice(['-c', writeConfig(testConfig([{ port: u.port }])), '--pid-file', pidFile]);
  const line = await sluice.waitForLog((l) => l['pid_file'] === pidFile);
  assert.is(line['outcome'], 'replaced_stale');
  await sluice.waitForLog(transitionTo('healthy'));
  assert.is(readFileSync(pidFile, 'utf8'), `${sluice.pid}\n`);
  sluice.kill('SIGTERM');
  assert.is((await exitWithin(sluice)).code, 0, JSON.stringify(sluice.lines) + sluice.stderr());
});

test('pid_file in the config resolves against the config file folder', async () => {
  const u = await upstream();
  const config = writeConfig({
    ...testConfig([{ port: u.port }]),
    proxy: { ...testConfig([]).proxy, pid_file: 'relative.pid' },
  });
  const sluice = startSluice(['-c', config]);
  await sluice.waitForLog(transitionTo('healthy'));
  const expected = join(config, '..', 'relative.pid');
  assert.is(readFileSync(expected, 'utf8'), `${sluice.pid}\n`);
  sluice.kill('SIGTERM');
  await exitWithin(sluice);
  assert.not.ok(existsSync(expected));
});

test.run();
