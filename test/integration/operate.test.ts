/** Operating sluice: daemon mode, status and stop commands, log reopening, signals an operator sends. */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort, get, until } from '../support/http.ts';
import { exitWithin, killAll, killPids, repoRoot, startSluice, transitionTo } from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';

const main = join(repoRoot, 'src/main.ts');
const upstreams: TestUpstream[] = [];
const daemonPids: number[] = [];

/** Runs `sluice …` to completion; never rejects (exit codes are what we test). */
async function sluice(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [main, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function upstream(): Promise<TestUpstream> {
  const u = await startUpstream('a');
  upstreams.push(u);
  return u;
}

test.after(async () => {
  killAll();
  killPids(daemonPids);
  await Promise.all(upstreams.map((u) => u.close()));
});

test('-d returns once /ready is 200; status says healthy; stop reports the drain and removes the PID file', async () => {
  const a = await upstream();
  const dir = tempDir();
  const port = await freePort();
  const config = writeConfig({
    ...testConfig([{ port: a.port }], { listen_port: port, pid_file: join(dir, 'sluice.pid') }),
    log: { file: join(dir, 'sluice.log') },
  });
  const started = await sluice('-d', '-c', config);
  assert.is(started.code, 0, started.stderr);
  const pid = Number(readFileSync(join(dir, 'sluice.pid'), 'utf8'));
  daemonPids.push(pid);
  assert.is(started.stdout, `sluice started (PID: ${pid})\n`);
  assert.is(started.stderr, '');
  assert.is((await get(port, '/ready')).status, 200, 'ready as soon as -d returned');

  const status = await sluice('status', '-c', config);
  assert.is(status.code, 0, status.stdout + status.stderr);
  assert.is(status.stdout.trim(), `Proxy running and healthy (PID: ${pid})`);

  const stopped = await sluice('stop', '-c', config);
  assert.is(stopped.code, 0);
  assert.match(stopped.stdout, new RegExp(`^Proxy stopped \\(PID: ${pid}\\) after \\d+ ms`));
  assert.not.ok(existsSync(join(dir, 'sluice.pid')));
  const log = readFileSync(join(dir, 'sluice.log'), 'utf8');
  assert.match(log, '"msg":"Shutdown complete"');

  const after = await sluice('status', '-c', config);
  assert.is(after.code, 1);
  assert.is(after.stdout.trim(), 'Proxy not running (no PID file)');
});

test('-d when the child cannot start: the parent prints the error and exits 1', async () => {
  const dir = tempDir();
  const config = writeConfig({
    ...testConfig([{ port: 1 }], {
      listen_port: await freePort(),
      startup_timeout_ms: 300,
      pid_file: join(dir, 'sluice.pid'),
    }),
    log: { file: join(dir, 'sluice.log') },
  });
  const result = await sluice('-d', '-c', config);
  assert.is(result.code, 1);
  assert.match(result.stderr, 'sluice: failed to start: no healthy backend within 300 ms');
  assert.not.ok(existsSync(join(dir, 'sluice.pid')));
});

test('restart (SIGUSR2) of a daemon: the new PID once it is healthy; a successor that cannot start leaves the old one serving (exit 1)', async () => {
  const a = await upstream();
  const dir = tempDir();
  const configFile = join(dir, 'sluice.json');
  const port = await freePort();
  const adminPort = await freePort();
  const base = {
    ...testConfig([{ port: a.port }], {
      listen_port: port,
      pid_file: join(dir, 'sluice.pid'),
      grace_period_ms: 100,
      startup_timeout_ms: 2_000,
    }),
    log: { file: join(dir, 'sluice.log') },
    admin: { listen_port: adminPort },
  };
  writeFileSync(configFile, JSON.stringify(base));
  assert.is((await sluice('-d', '-c', configFile)).code, 0);
  const first = Number(readFileSync(join(dir, 'sluice.pid'), 'utf8'));
  daemonPids.push(first);

  const restarted = await sluice('restart', '-c', configFile);
  assert.is(restarted.code, 0, restarted.stdout + restarted.stderr);
  const second = Number(readFileSync(join(dir, 'sluice.pid'), 'utf8'));
  daemonPids.push(second);
  assert.is.not(second, first);
  // The successor rewrote the companion file as it took the PID file over.
  await until(
    () => JSON.parse(readFileSync(join(dir, 'sluice.pid.json'), 'utf8')) as { pid: number },
    (info) => info.pid === second,
  );
  assert.match(
    restarted.stdout,
    new RegExp(`^Proxy restarted \\(PID: ${first} → ${second}\\) after \\d+ ms; PID ${first} is draining`),
  );
  const status = await sluice('status', '-c', configFile);
  assert.is(status.stdout.trim(), `Proxy running and healthy (PID: ${second})`);
  assert.is((await get(port, '/after-restart')).body, 'a\n');

  // The new process reads the file anew: a backend that never answers keeps it from becoming healthy.
  writeFileSync(configFile, JSON.stringify({ ...base, backends: [{ address: '127.0.0.1', port: await freePort() }] }));
  const failed = await sluice('restart', '-c', configFile);
  assert.is(failed.code, 1, failed.stdout);
  assert.match(failed.stdout, `Restart failed (PID: ${second} keeps serving): no healthy backend within 2000 ms`);
  assert.is(Number(readFileSync(join(dir, 'sluice.pid'), 'utf8')), second);
  assert.is((await get(port, '/still-served')).body, 'a\n');

  writeFileSync(configFile, JSON.stringify(base));
  assert.is((await sluice('stop', '-c', configFile)).code, 0);
  const log = readFileSync(join(dir, 'sluice.log'), 'utf8');
  assert.match(log, `"successor_pid":${second}`);
});

test('status: stale PID file, and running but unhealthy with the HTTP code and the URL it probed', async () => {
  const dir = tempDir();
  const pidFile = join(dir, 'sluice.pid');
  writeFileSync(pidFile, '999999\n');
  const stale = await sluice('status', '--pid-file', pidFile);
  assert.is(stale.code, 1);
  assert.is(stale.stdout.trim(), 'Proxy not running (stale PID file)');

  // A proxy whose only backend is dead stays `starting`: /health answers 503.
  const proc = startSluice([
    '-c',
    writeConfig(testConfig([{ port: 1 }], { startup_timeout_ms: 60_000 })),
    '--pid-file',
    pidFile,
  ]);
  const port = await proc.port();
  const url = `http://127.0.0.1:${port}/health`;
  const unhealthy = await sluice('status', '--pid-file', pidFile, '--url', url);
  assert.is(unhealthy.code, 1);
  assert.is(unhealthy.stdout.trim(), `Proxy running but unhealthy (PID: ${proc.pid}, HTTP: 503); probed ${url}`);
  // Without --url: the address the proxy recorded beside its PID file, its real port (the config says 0).
  const recorded = await sluice('status', '--pid-file', pidFile);
  assert.is(recorded.stdout.trim(), `Proxy running but unhealthy (PID: ${proc.pid}, HTTP: 503); probed ${url}`);
  proc.kill('SIGTERM');
  await exitWithin(proc);
});

test('the PID file has a companion saying where the proxy is; status, reload and stop find it from --pid-file alone', async () => {
  const a = await upstream();
  const dir = tempDir();
  const pidFile = join(dir, 'sluice.pid');
  const configFile = join(dir, 'sluice.json');
  // A token the commands can only know from the config file that the companion names.
  writeFileSync(
    configFile,
    JSON.stringify({
      ...testConfig([{ port: a.port }], { pid_file: pidFile }),
      admin: { listen_port: 0, token: 's3cret' },
    }),
  );
  const proc = startSluice(['-c', configFile]);
  const port = await proc.port();
  const adminPort = (await proc.waitForLog((l) => l['event'] === 'admin.listening'))['port'] as number;
  await proc.waitForLog(transitionTo('healthy'));
  const info = JSON.parse(readFileSync(`${pidFile}.json`, 'utf8')) as Record<string, unknown>;
  assert.equal(info, {
    pid: proc.pid,
    config: configFile,
    health_url: `http://127.0.0.1:${port}/health`,
    ready_url: `http://127.0.0.1:${port}/ready`,
    admin_url: `http://127.0.0.1:${adminPort}`,
  });

  const status = await sluice('status', '--pid-file', pidFile);
  assert.is(status.stdout.trim(), `Proxy running and healthy (PID: ${proc.pid})`);
  assert.is(status.code, 0);
  const json = await sluice('status', '--pid-file', pidFile, '--json');
  assert.is(json.code, 0, json.stdout);
  assert.is((JSON.parse(json.stdout) as { state: string }).state, 'healthy');
  const reloaded = await sluice('reload', '--pid-file', pidFile);
  assert.is(reloaded.code, 0, reloaded.stdout + reloaded.stderr);
  assert.is(reloaded.stdout.trim(), `Configuration reloaded (PID: ${proc.pid})`);

  const stopped = await sluice('stop', '--pid-file', pidFile);
  assert.is(stopped.code, 0, stopped.stdout);
  assert.is((await exitWithin(proc)).code, 0);
  assert.not.ok(existsSync(pidFile));
  assert.not.ok(existsSync(`${pidFile}.json`), 'removed with the PID file');
});

test('status: /health 200 but /ready 503 is "not ready", exit 1', async () => {
  const a = await upstream();
  const pidFile = join(tempDir(), 'sluice.pid');
  const proc = startSluice(['-c', writeConfig(testConfig([{ port: a.port }], { pid_file: pidFile }))]);
  const port = await proc.port();
  await proc.waitForLog(transitionTo('healthy'));
  await a.close();
  await proc.waitForLog((l) => l['actor'] === 'health-checker' && l['to'] === 'unhealthy');
  await until(
    () => get(port, '/ready'),
    (answer) => answer.status === 503,
  );
  assert.is((await get(port, '/health')).status, 200, 'the lifecycle stays healthy');
  const status = await sluice('status', '--pid-file', pidFile);
  assert.is(status.code, 1);
  assert.is(status.stdout.trim(), `Proxy running but not ready (PID: ${proc.pid}, no healthy backend)`);
  proc.kill('SIGTERM');
  await exitWithin(proc);
});

test('stop on a stale PID file removes it and its companion, exit 0', async () => {
  const dir = tempDir();
  const pidFile = join(dir, 'sluice.pid');
  writeFileSync(pidFile, '999999\n');
  writeFileSync(
    `${pidFile}.json`,
    JSON.stringify({ pid: 999999, config: null, health_url: null, ready_url: null, admin_url: null }),
  );
  const stopped = await sluice('stop', '--pid-file', pidFile);
  assert.is(stopped.code, 0);
  assert.is(stopped.stdout.trim(), 'Proxy not running (stale PID file removed)');
  assert.not.ok(existsSync(pidFile));
  assert.not.ok(existsSync(`${pidFile}.json`));
  const again = await sluice('stop', '--pid-file', pidFile);
  assert.is(again.code, 1);
  assert.is(again.stdout.trim(), 'Proxy not running (no PID file)');
});

test('stop --timeout without --force leaves a stuck drain alone (exit 1); the drain then ends by itself', async () => {
  const a = await upstream();
  const pidFile = join(tempDir(), 'sluice.pid');
  const proc = startSluice([
    '-c',
    writeConfig(testConfig([{ port: a.port }], { drain_timeout_ms: 60_000 })),
    '--pid-file',
    pidFile,
  ]);
  const port = await proc.port();
  await proc.waitForLog(transitionTo('healthy'));
  const held = get(port, a.holdPath);
  await a.nextHeld();
  const patient = await sluice('stop', '--pid-file', pidFile, '--timeout', '300');
  assert.is(patient.code, 1);
  assert.match(patient.stdout, `Proxy still running after 300 ms (PID: ${proc.pid}); use --force to kill it`);
  a.release();
  assert.is((await held).status, 200);
  assert.is((await exitWithin(proc)).code, 0);
});

test('stop --force: SIGKILL once the timeout has passed, and the PID file is removed', async () => {
  const a = await upstream();
  const pidFile = join(tempDir(), 'sluice.pid');
  const proc = startSluice([
    '-c',
    writeConfig(testConfig([{ port: a.port }], { drain_timeout_ms: 60_000 })),
    '--pid-file',
    pidFile,
  ]);
  const port = await proc.port();
  await proc.waitForLog(transitionTo('healthy'));
  const held = get(port, a.holdPath).catch(() => 'cut');
  await a.nextHeld();
  const forced = await sluice('stop', '--pid-file', pidFile, '--timeout', '300', '--force');
  assert.is(forced.code, 0, forced.stdout + forced.stderr);
  assert.match(forced.stdout, `Proxy killed (PID: ${proc.pid})`);
  assert.is((await exitWithin(proc)).signal, 'SIGKILL');
  assert.not.ok(existsSync(pidFile));
  assert.is(await held, 'cut');
  a.release();
});

test('reload: a new backend set applies live, as a healthy → healthy transition; an invalid file changes nothing', async () => {
  const a = await upstream();
  const b = await startUpstream('b');
  upstreams.push(b);
  const dir = tempDir();
  const configFile = join(dir, 'sluice.json');
  const base = {
    ...testConfig([{ port: a.port }], { workers: 2, pid_file: join(dir, 'sluice.pid') }),
    admin: { listen_port: 0 },
  };
  writeFileSync(configFile, JSON.stringify(base));
  const proc = startSluice(['-c', configFile]);
  const port = await proc.port();
  const adminPort = (await proc.waitForLog((l) => l['event'] === 'admin.listening'))['port'] as number;
  await proc.waitForLog(transitionTo('healthy'));
  assert.is((await get(port, '/before')).body, 'a\n');
  // The command reads the admin address from the file: point it at the port the proxy got.
  const withAdminPort = (config: object) => ({ ...config, admin: { listen_port: adminPort } });

  writeFileSync(
    configFile,
    JSON.stringify(withAdminPort({ ...base, backends: [{ address: '127.0.0.1', port: b.port }] })),
  );
  const reloaded = await sluice('reload', '-c', configFile);
  assert.is(reloaded.code, 0, reloaded.stdout + reloaded.stderr);
  assert.match(reloaded.stdout, `Configuration reloaded (PID: ${proc.pid}); needs a restart to apply: $.admin`);
  const transition = await proc.waitForLog((l) => l['event'] === 'RELOAD');
  assert.equal(
    [transition['from'], transition['to'], transition.msg],
    ['healthy', 'healthy', 'Configuration reloaded'],
  );
  await until(
    () => get(port, '/after'),
    (answer) => answer.body === 'b\n',
  );
  const servedByA = a.received.length;
  for (let i = 0; i < 10; i++) assert.is((await get(port, `/only-b-${i}`)).body, 'b\n');
  assert.is(a.received.length, servedByA, 'the removed backend gets nothing');

  writeFileSync(
    configFile,
    JSON.stringify(withAdminPort({ ...base, proxy: { ...base.proxy, drain_timeout_ms: 'soon' } })),
  );
  // The command checks the file first (as `nginx -t && nginx -s reload`): exit 2, nothing sent.
  const refused = await sluice('reload', '-c', configFile);
  assert.is(refused.code, 2);
  assert.match(refused.stderr, `${configFile}: $.proxy.drain_timeout_ms`);
  assert.not.ok(proc.lines.some((l) => l['event'] === 'config.reload_failed'));
  // A SIGHUP sent anyway: one error line, and the running configuration stays.
  proc.kill('SIGHUP');
  const failure = await proc.waitForLog((l) => l['event'] === 'config.reload_failed');
  assert.match(String(failure.msg), `${configFile}: $.proxy.drain_timeout_ms`);
  assert.match(String(failure.msg), '"soon"');
  assert.match(String(failure.msg), 'the running configuration stays');
  assert.is((await get(port, '/still-b')).body, 'b\n');
  proc.kill('SIGTERM');
  assert.is((await exitWithin(proc)).code, 0);
});

test('SIGUSR1 reopens the log file after logrotate moved it; SIGHUP without a change does not end the process', async () => {
  const a = await upstream();
  const dir = tempDir();
  const logFile = join(dir, 'sluice.log');
  const proc = startSluice(['-c', writeConfig({ ...testConfig([{ port: a.port }]), log: { file: logFile } })]);
  await until(
    () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    (text) => text.includes('Proxy is healthy and accepting connections'),
  );
  renameSync(logFile, `${logFile}.1`);
  proc.kill('SIGUSR1');
  await until(
    () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    (text) => text.includes('log files reopened'),
  );
  proc.kill('SIGHUP');
  await until(
    () => readFileSync(logFile, 'utf8'),
    (text) => text.includes('Configuration reloaded'),
  );
  proc.kill('SIGTERM');
  assert.is((await exitWithin(proc)).code, 0);
  assert.match(readFileSync(logFile, 'utf8'), '"msg":"Shutdown complete"');
  assert.not.match(readFileSync(`${logFile}.1`, 'utf8'), 'Shutdown complete');
});

test.run();
