/**
 * Zero loss for HTTP/2: clients multiplexing streams on a few connections
 * (test/support/h2-load.ts) across a SIGTERM drain, a SIGHUP reload and five
 * hot restarts in a row. A stream the client sent before the final GOAWAY is
 * never lost; what it may retry (REFUSED_STREAM, or never sent because the
 * connection was going away) is counted apart.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isProcessAlive, readPid } from '../../src/supervisor/pid-file.ts';
import { freePort } from '../support/http.ts';
import { startH2Load, type H2LoadCounts } from '../support/h2-load.ts';
import { exitWithin, killAll, killPids, startSluice, transitionTo } from '../support/sluice-process.ts';
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

const losses = ({ ok: _ok, retried: _retried, refused: _refused, unaccepted: _unaccepted, ...rest }: H2LoadCounts) =>
  rest;
const lossless = { lost: 0, status5xx: 0, otherStatus: 0, truncated: 0 };

async function upstream(name: string): Promise<TestUpstream> {
  const u = await startUpstream(name);
  upstreams.push(u);
  return u;
}

/** A proxy with one plain HTTP/2 listener on a fixed port, a PID file, and its config file. */
async function h2Proxy(backendPorts: number[], proxy: Record<string, unknown> = {}) {
  const dir = tempDir();
  const pidFile = join(dir, 'sluice.pid');
  pidFiles.push(pidFile);
  const configFile = join(dir, 'sluice.json');
  const port = await freePort();
  const base = testConfig(
    backendPorts.map((p) => ({ port: p })),
    { pid_file: pidFile, grace_period_ms: 200, drain_timeout_ms: 5_000, ...proxy },
  );
  const { listen_host: _h, listen_port: _p, ...rest } = base.proxy;
  const config = { ...base, proxy: rest, listeners: [{ host: '127.0.0.1', port, http2: true }] };
  writeFileSync(configFile, JSON.stringify(config));
  const proc = startSluice(['-c', configFile, '--log-level', 'debug']);
  await proc.waitForLog(transitionTo('healthy'));
  return { proc, port, pidFile, configFile, config };
}

const report = (load: { counts: H2LoadCounts; failures: string[] }) =>
  `${JSON.stringify(load.counts)} ${load.failures.join('; ')}`;

test('HTTP/2 under load, SIGTERM: every stream sent before the last GOAWAY completes', async () => {
  const a = await upstream('a');
  const { proc, port } = await h2Proxy([a.port]);
  const load = startH2Load(port, { connections: 3, streams: 8 });
  try {
    await load.okAfter(300);
    proc.kill('SIGTERM');
    assert.is((await exitWithin(proc)).code, 0);
    const counts = await load.stop();
    // Refused and unaccepted connections (the listening socket had closed) were never read by the proxy.
    assert.equal(losses(counts), lossless, report(load));
    assert.ok(counts.ok > 300);
  } finally {
    await load.stop();
  }
});

test('HTTP/2 under load, SIGHUP to a new backend set: no stream fails', async () => {
  const a = await upstream('a');
  const b = await upstream('b');
  const { proc, port, configFile, config } = await h2Proxy([a.port]);
  const load = startH2Load(port, { connections: 3, streams: 8 });
  try {
    await load.okAfter(300);
    writeFileSync(
      configFile,
      JSON.stringify({ ...config, backends: [{ address: '127.0.0.1', port: b.port, weight: 1 }] }),
    );
    const mark = proc.lines.length;
    proc.kill('SIGHUP');
    await proc.waitForLog((l) => l['event'] === 'RELOAD', 10_000, mark);
    await proc.waitForLog(
      (l) => l['event'] === 'snapshot.applied' && l['total'] === 1 && l['selectable'] === 1,
      10_000,
      mark,
    );
    await load.okAfter(300);
    const counts = await load.stop();
    const unsent = { retried: counts.retried, refused: counts.refused, unaccepted: counts.unaccepted };
    assert.equal(
      { ...losses(counts), ...unsent },
      { ...lossless, retried: 0, refused: 0, unaccepted: 0 },
      report(load),
    );
  } finally {
    await load.stop();
    proc.kill('SIGTERM');
    await exitWithin(proc);
  }
});

test('HTTP/2 under load, five hot restarts in a row: each old process drains its connections, no stream is lost', async () => {
  const a = await upstream('a');
  const { proc, pidFile, port } = await h2Proxy([a.port]);
  const load = startH2Load(port, { connections: 3, streams: 8 });
  try {
    await load.okAfter(200);
    for (let round = 0; round < 5; round++) {
      const from = readPid(pidFile)!;
      const mark = proc.lines.length;
      process.kill(from, 'SIGUSR2');
      await proc.waitForLog((l) => l['event'] === 'pid_file.taken_over' && l['predecessor_pid'] === from, 15_000, mark);
      const done = await proc.waitForLog((l) => l.msg === 'Shutdown complete' && l['pid'] === from, 15_000, mark);
      assert.is(done['exit_code'], 0);
      for (let i = 0; i < 250 && isProcessAlive(from); i++) await new Promise((resolve) => setTimeout(resolve, 20));
      await load.okAfter(200, 15_000);
    }
    const counts = await load.stop();
    assert.equal(
      { ...losses(counts), refused: counts.refused, unaccepted: counts.unaccepted },
      { ...lossless, refused: 0, unaccepted: 0 },
      report(load),
    );
  } finally {
    await load.stop();
    const last = readPid(pidFile);
    if (last !== undefined) process.kill(last, 'SIGTERM');
    await proc
      .waitForLog((l) => l.msg === 'Shutdown complete' && l['pid'] === last, 10_000)
      .catch(() => {
        // Cleanup only: a process that does not log its shutdown in time is killed by after().
      });
  }
});

test.run();
