/** Under `npm start`, the proxy never outlives the npm process that started it. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startUpstream } from '../support/upstream.ts';
import { freePort } from '../support/http.ts';
import { repoRoot } from '../support/sluice-process.ts';
import { testConfig, writeConfig } from '../support/config-file.ts';

const main = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

test('when its npm parent is killed, sluice drains and exits on its own', async () => {
  const upstream = await startUpstream('a');
  const config = writeConfig(testConfig([{ port: upstream.port }], { workers: 1 }));
  // Stands in for npm: starts sluice with npm's environment, then is SIGKILLed (it cannot forward anything).
  const fakeNpm = spawn(
    process.execPath,
    [
      '-e',
      `require('node:child_process').spawn(process.execPath, ${JSON.stringify([main, '-c', config])}, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, npm_lifecycle_event: 'start' } }); setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines: Record<string, unknown>[] = [];
  const seen = (match: (l: Record<string, unknown>) => boolean, timeoutMs = 10_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`not seen within ${timeoutMs} ms: ${JSON.stringify(lines)}`)),
        timeoutMs,
      );
      const check = () => {
        const found = lines.find(match);
        if (!found) return;
        clearTimeout(timer);
        fakeNpm.stdout.off('data', check);
        resolve(found);
      };
      fakeNpm.stdout.on('data', check);
      check();
    });
  let buffer = '';
  fakeNpm.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    for (const part of parts) lines.push(JSON.parse(part) as Record<string, unknown>);
  });
  let sluicePid: number | undefined;
  try {
    const healthy = await seen((l) => l['to'] === 'healthy' && l['actor'] === 'supervisor');
    sluicePid = healthy['pid'] as number;
    fakeNpm.kill('SIGKILL');
    const received = await seen((l) => l['event'] === 'stop.requested' && l['signal'] === 'parent-exit');
    assert.is(received['pid'], sluicePid);
    const last = await seen((l) => l['msg'] === 'Shutdown complete');
    assert.is(last['reason'], 'drained');
    assert.is(last['exit_code'], 0);
  } finally {
    fakeNpm.kill('SIGKILL');
    // If the behaviour broke, do not leave the orphan running.
    if (sluicePid !== undefined)
      try {
        process.kill(sluicePid, 'SIGKILL');
      } catch {
        /* already exited */
      }
    await upstream.close();
  }
});

test('npm start, then Ctrl-C: sluice drains and npm itself exits 0', async () => {
  const port = await freePort();
  // Its own process group, as a terminal's foreground job: Ctrl-C is SIGINT to every process in it.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('npm_')));
  const npm = spawn('npm', ['start', '--', '-p', String(port)], {
    cwd: repoRoot,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
  let output = '';
  const healthy = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not healthy within 20 s: ${output}`)), 20_000);
    npm.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      if (output.includes('Proxy is healthy and accepting connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  try {
    await healthy;
    process.kill(-npm.pid!, 'SIGINT');
    const code = await Promise.race([
      exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('npm still running')), 15_000)),
    ]);
    assert.match(output, '"exit_code":0');
    assert.is(code, 0, 'npm reports what sluice did, not 130');
  } finally {
    try {
      process.kill(-npm.pid!, 'SIGKILL');
    } catch {
      // already exited
    }
  }
});

test.run();
