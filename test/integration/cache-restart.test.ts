/**
 * The store outlives a hot restart: `sluice restart` hands the sockets to
 * a new process, which opens the same LMDB store and serves what the old
 * one stored without asking the upstream.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readPid } from '../../src/supervisor/pid-file.ts';
import { freePort, get } from '../support/http.ts';
import { answer, startOrigin, type Origin } from '../support/origin.ts';
import { killAll, killPids, startSluice, transitionTo } from '../support/sluice-process.ts';
import { tempDir, testConfig } from '../support/config-file.ts';

const mainFile = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
let origin: Origin | undefined;
let pidFile: string | undefined;

test.after(async () => {
  killAll();
  // The successor is not our child: end whatever the PID file names.
  killPids([pidFile ? readPid(pidFile) : undefined]);
  await origin?.close();
});

test('a hit after `sluice restart` needs no upstream request', async () => {
  origin = await startOrigin();
  origin.on('/kept', answer('kept across the restart', { 'cache-control': 'max-age=600' }));
  const dir = tempDir();
  pidFile = join(dir, 'sluice.pid');
  const configFile = join(dir, 'sluice.json');
  const port = await freePort();
  const config = {
    ...testConfig([{ port: origin.port }], {
      startup_timeout_ms: 20_000,
      listen_port: port,
      pid_file: pidFile,
      grace_period_ms: 100,
      drain_timeout_ms: 5_000,
    }),
    cache: { path: join(dir, 'cache') },
  };
  writeFileSync(configFile, JSON.stringify(config));
  const proc = startSluice(['-c', configFile]);
  await proc.waitForLog(transitionTo('healthy'));
  assert.is((await get(port, '/kept')).headers['cache-status'], 'sluice; fwd=miss; stored');
  const before = readPid(pidFile)!;
  // Not spawnSync: this process is the origin, and must answer the successor's health checks meanwhile.
  const restarted = await promisify(execFile)(process.execPath, [mainFile, 'restart', '--pid-file', pidFile], {
    timeout: 30_000,
  });
  assert.match(restarted.stdout, /^Proxy restarted/);
  const after = readPid(pidFile)!;
  assert.is.not(after, before);
  const hit = await get(port, '/kept');
  assert.is(hit.headers['cache-status'], 'sluice; hit');
  assert.is(hit.body, 'kept across the restart');
  assert.is(origin.count('/kept'), 1);
});

test.run();
