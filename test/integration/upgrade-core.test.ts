/**
 * Upgrades go through the core's rules: a connect the backend refuses is
 * retried on another backend of the upstream, and every tunnel gets its
 * access-log line when it closes, with the upstream's 101.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { until } from '../support/http.ts';
import { exitWithin, killAll, startRouting } from '../support/sluice-process.ts';
import { HEALTH_PATH } from '../support/upstream.ts';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';

/** A backend that answers its health check and upgrades every upgrade request, then echoes upper-cased. */
async function upgradingBackend(): Promise<Server> {
  const server = createServer((req, res) => res.end(req.url === HEALTH_PATH ? '' : 'plain\n'));
  server.on('upgrade', (_req, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (chunk: Buffer) => socket.write(chunk.toString().toUpperCase()));
    socket.on('end', () => socket.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** One upgrade through the proxy: resolves with the status line and the echo of `text`, then closes. */
function upgradeOnce(port: number, id: string, text: string): Promise<{ status: string; echo: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    socket.setEncoding('utf8');
    socket.on('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error('no answer')));
    socket.on('data', (chunk: string) => {
      received += chunk;
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      const status = received.slice(0, received.indexOf('\r\n'));
      if (!status.includes(' 101 ')) {
        socket.destroy();
        resolve({ status, echo: '' });
        return;
      }
      if (received.length === end + 4) return void socket.write(text);
      if (received.length >= end + 4 + text.length) {
        socket.end();
        resolve({ status, echo: received.slice(end + 4) });
      }
    });
    socket.write(
      `GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\nx-request-id: ${id}\r\n\r\n`,
    );
  });
}

test.after(() => killAll());

test('an upgrade whose backend refuses the connection is retried on the next one; each tunnel is logged', async () => {
  const live = await upgradingBackend();
  const doomed = await upgradingBackend();
  const livePort = (live.address() as AddressInfo).port;
  const doomedPort = (doomed.address() as AddressInfo).port;
  const accessLog = join(tempDir(), 'access.log');
  // One health check at start-up, then none for a minute: the closed backend still looks healthy.
  const config = {
    ...testConfig([{ port: livePort }, { port: doomedPort }], { workers: 1 }, { interval_ms: 60_000 }),
    access_log: { file: accessLog },
  };
  // Started once the listener thread routes to both.
  const { sluice, port } = await startRouting(['-c', writeConfig(config)], 1, 2);
  try {
    doomed.closeAllConnections();
    await new Promise<void>((resolve) => doomed.close(() => resolve()));
    // Round robin sends every other upgrade to the closed backend first.
    for (let i = 0; i < 4; i++) {
      const answer = await upgradeOnce(port, `up-${i}`, `hello ${i}`);
      assert.match(answer.status, / 101 /, `upgrade ${i}: ${answer.status}`);
      assert.is(answer.echo, `HELLO ${i}`);
    }
    assert.ok(
      sluice.lines.some((l) => l['event'] === 'upstream.failed' && l['code'] === 'ECONNREFUSED'),
      'the closed backend was tried',
    );
    const lines = await until(
      () =>
        readFileSync(accessLog, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      (all) => all.filter((l) => String(l['request_id']).startsWith('up-')).length === 4,
    );
    const tunnels = lines.filter((l) => String(l['request_id']).startsWith('up-'));
    for (const line of tunnels) {
      assert.is(line['status'], 101);
      assert.is(line['upstream_status'], 101);
      assert.is(line['backend'], `127.0.0.1:${livePort}`);
      assert.is(line['path'], '/chat');
      assert.ok((line['bytes_sent'] as number) > 0);
    }
    assert.ok(
      tunnels.some((l) => l['attempts'] === 2),
      'a retried tunnel counts both attempts',
    );
  } finally {
    sluice.kill('SIGTERM');
    await exitWithin(sluice);
    live.closeAllConnections();
    live.close();
  }
});

test.run();
