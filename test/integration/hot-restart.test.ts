/**
 * Hot restart (SIGUSR2) under continuous keep-alive load: the listening
 * sockets are handed to a new process, the old one drains, and no request
 * is refused, reset, answered 5xx or truncated. Repeated hand-overs in one
 * run, because a race that shows one time in ten is a bug.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isProcessAlive, readPid } from '../../src/supervisor/pid-file.ts';
import { freePort, get } from '../support/http.ts';
import { startLoad, type LoadCounts } from '../support/load.ts';
import { killAll, killPids, startSluice, transitionTo, type SluiceProcess } from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { tempDir, testConfig } from '../support/config-file.ts';

const upstreams: TestUpstream[] = [];
const pidFiles: string[] = [];

test.after(async () => {
  killAll();
  // Successors are not our children: end whatever a PID file still names.
  killPids(pidFiles.map((file) => readPid(file)));
  await Promise.all(upstreams.map((u) => u.close()));
});

const lossless: Omit<LoadCounts, 'ok'> = {
  refused: 0,
  unaccepted: 0,
  reset: 0,
  status5xx: 0,
  otherStatus: 0,
  truncated: 0,
  other: 0,
};
const losses = ({ ok: _ok, ...rest }: LoadCounts) => rest;

async function upstream(name: string): Promise<TestUpstream> {
  const u = await startUpstream(name);
  upstreams.push(u);
  return u;
}

/** A proxy on a fixed port with a PID file, started from a config file the test may rewrite. */
async function proxyWithPidFile(backendPort: number, proxy: Record<string, unknown> = {}) {
  const dir = tempDir();
  const pidFile = join(dir, 'sluice.pid');
  pidFiles.push(pidFile);
  const configFile = join(dir, 'sluice.json');
  const port = await freePort();
  const config = testConfig([{ port: backendPort }], {
    listen_port: port,
    pid_file: pidFile,
    grace_period_ms: 200,
    drain_timeout_ms: 5_000,
    ...proxy,
  });
  writeFileSync(configFile, JSON.stringify(config));
  const proc = startSluice(['-c', configFile]);
  await proc.waitForLog(transitionTo('healthy'));
  return { proc, port, pidFile, configFile, config };
}

/** SIGTERM to the process the PID file names (the newest successor), then its last line. */
async function stopNewest(proc: SluiceProcess, pidFile: string): Promise<void> {
  const last = readPid(pidFile);
  if (last === undefined) return;
  process.kill(last, 'SIGTERM');
  await proc.waitForLog((l) => l.msg === 'Shutdown complete' && l['pid'] === last, 10_000);
}

/** One hand-over: SIGUSR2 to the PID file's process, then its successor's takeover and its own exit, from the log. */
async function handOver(proc: SluiceProcess, pidFile: string): Promise<{ from: number; to: number }> {
  const from = readPid(pidFile)!;
  const mark = proc.lines.length;
  process.kill(from, 'SIGUSR2');
  const taken = await proc.waitForLog(
    (l) => l['event'] === 'pid_file.taken_over' && l['predecessor_pid'] === from,
    15_000,
    mark,
  );
  const to = taken['pid'] as number;
  const done = await proc.waitForLog((l) => l.msg === 'Shutdown complete' && l['pid'] === from, 15_000, mark);
  assert.is(done['exit_code'], 0, 'the old process drained and exited 0');
  // "Shutdown complete" is its last line; the exit itself follows within moments.
  for (let i = 0; i < 250 && isProcessAlive(from); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.not.ok(isProcessAlive(from), `the old process ${from} exited`);
  assert.is(readPid(pidFile), to, 'the PID file names the new process');
  assert.ok(isProcessAlive(to));
  return { from, to };
}

test('SIGUSR2 five times in a row under keep-alive load: each new process takes over, nothing is refused, reset, 5xx or truncated', async () => {
  const a = await upstream('a');
  const { proc, port, pidFile } = await proxyWithPidFile(a.port);
  const load = startLoad(port, { clients: 8 });
  try {
    await load.okAfter(100);
    const pids = [readPid(pidFile)!];
    for (let round = 0; round < 5; round++) {
      const { to } = await handOver(proc, pidFile);
      pids.push(to);
      // Traffic flows through the new process before the next hand-over.
      await load.okAfter(100);
    }
    assert.is(new Set(pids).size, 6, `six distinct processes: ${pids.join(' → ')}`);
    const counts = await load.stop();
    assert.equal(losses(counts), lossless, `${JSON.stringify(counts)} ${load.failures.join('; ')}`);
    assert.ok(counts.ok > 600, `load kept flowing: ${counts.ok}`);
  } finally {
    await load.stop();
    await stopNewest(proc, pidFile);
  }
});

test('a hot restart applies a new worker count under load: 2 → 1 (one thread serves both sockets) → 3 (two bind anew), nothing lost', async () => {
  const a = await upstream('a');
  const { proc, port, pidFile, configFile, config } = await proxyWithPidFile(a.port, { workers: 2 });
  const load = startLoad(port, { clients: 8 });
  try {
    await load.okAfter(100);
    for (const workers of [1, 3]) {
      writeFileSync(configFile, JSON.stringify({ ...config, proxy: { ...config.proxy, workers } }));
      const mark = proc.lines.length;
      const { to } = await handOver(proc, pidFile);
      const listening = proc.lines.slice(mark).find((l) => l['pid'] === to && l['event'] === 'listeners.listening')!;
      assert.equal([listening['listeners'], listening['handed_over']], [workers, true]);
      await load.okAfter(200);
    }
    const counts = await load.stop();
    assert.equal(losses(counts), lossless, `${JSON.stringify(counts)} ${load.failures.join('; ')}`);
  } finally {
    await load.stop();
    await stopNewest(proc, pidFile);
  }
});

test('a hot restart whose new process cannot start (invalid config, then no healthy backend in time): the old one keeps serving, untouched', async () => {
  const a = await upstream('a');
  const { proc, port, pidFile, configFile, config } = await proxyWithPidFile(a.port, { startup_timeout_ms: 2_000 });
  const original = readPid(pidFile)!;
  const load = startLoad(port, { clients: 4 });
  try {
    await load.okAfter(50);
    writeFileSync(configFile, JSON.stringify({ ...config, proxy: { ...config.proxy, workers: 'many' } }));
    let mark = proc.lines.length;
    process.kill(original, 'SIGUSR2');
    const invalid = await proc.waitForLog((l) => l['code'] === 'SLUICE_HOT_RESTART_FAILED', 10_000, mark);
    assert.match(String(invalid.msg), 'exited (code 2) before it was healthy');
    assert.match(proc.stderr(), `${configFile}: $.proxy.workers`);
    await load.okAfter(50);

    // A backend that never answers: the new process times out (2 s) and exits 1.
    const dead = await freePort();
    writeFileSync(configFile, JSON.stringify({ ...config, backends: [{ address: '127.0.0.1', port: dead }] }));
    mark = proc.lines.length;
    process.kill(original, 'SIGUSR2');
    const timedOut = await proc.waitForLog((l) => l['code'] === 'SLUICE_HOT_RESTART_FAILED', 15_000, mark);
    assert.match(String(timedOut.msg), 'no healthy backend within 2000 ms');
    assert.match(String(timedOut.msg), 'this process keeps serving');
    await load.okAfter(50);

    assert.is(readPid(pidFile), original, 'the PID file still names the old process');
    assert.is((await get(port, '/ready')).status, 200);
    assert.ok(
      !proc.lines.some((l) => l['pid'] === original && l['to'] === 'draining'),
      'the old process never drained',
    );
    const counts = await load.stop();
    assert.equal(losses(counts), lossless, `${JSON.stringify(counts)} ${load.failures.join('; ')}`);
  } finally {
    await load.stop();
    proc.kill('SIGTERM');
  }
});

test.run();
