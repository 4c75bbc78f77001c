/**
 * Upgrade requests (WebSocket and others) become a byte tunnel to a backend,
 * held open by a drain; in every way a request can enter (plain, with request
 * hooks, through a route).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { exitWithin, killAll, startSluice, transitionTo } from '../support/sluice-process.ts';
import { HEALTH_PATH } from '../support/upstream.ts';
import { testConfig, writeConfig } from '../support/config-file.ts';
import { entered, enter, entries } from '../support/entries.ts';

let backend: Server | undefined;
const upgrades: IncomingMessage[] = [];

/** Opens an upgraded connection through the proxy; resolves once the 101 arrived. */
function openTunnel(port: number): Promise<{ socket: Socket; head: string; next: () => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buffer = '';
    let waiter: ((text: string) => void) | undefined;
    // The waiter once the head is in and no next() is waiting: what arrives then is dropped.
    const nobodyReading = (): void => {
      /* no next() waits: the text is not read */
    };
    socket.setEncoding('utf8');
    socket.on('error', reject);
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf('\r\n\r\n');
      if (end !== -1 && !waiter) {
        const head = buffer.slice(0, end);
        buffer = buffer.slice(end + 4);
        waiter = nobodyReading;
        resolve({
          socket,
          head,
          next: () =>
            new Promise((done) => {
              if (buffer) {
                const text = buffer;
                buffer = '';
                return done(text);
              }
              waiter = done;
            }),
        });
      } else if (waiter && buffer) {
        const text = buffer;
        buffer = '';
        const w = waiter;
        waiter = nobodyReading;
        w(text);
      }
    });
    socket.write('GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
  });
}

// Debug lines: `entered` reads the one that says request hooks loaded.
const DEBUG = ['--log-level', 'debug'];

for (const entry of entries) {
  const s = suite(`upgrade (${entry})`);

  s.before(async () => {
    // Answers 101 and then echoes every byte upper-cased.
    backend = createServer((req, res) => res.end(req.url === HEALTH_PATH ? '' : 'plain\n'));
    backend.on('upgrade', (req, socket) => {
      upgrades.push(req);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
      socket.on('data', (chunk: Buffer) => socket.write(chunk.toString().toUpperCase()));
    });
    await new Promise<void>((resolve) => backend!.listen(0, '127.0.0.1', resolve));
  });

  s.after(() => {
    killAll();
    backend?.closeAllConnections();
    backend?.close();
  });

  s(`${entry}: an upgrade is tunnelled both ways, with X-Forwarded-For and Via added`, async () => {
    const port0 = (backend!.address() as { port: number }).port;
    const sluice = startSluice([
      '-c',
      writeConfig(enter(testConfig([{ port: port0 }], { workers: 1, drain_timeout_ms: 500 }), entry)),
      ...DEBUG,
    ]);
    const port = await sluice.port();
    await sluice.waitForLog(transitionTo('healthy'));
    await entered(sluice, entry);
    const tunnel = await openTunnel(port);
    assert.match(tunnel.head, /^HTTP\/1\.1 101 Switching Protocols/);
    tunnel.socket.write('hello through sluice');
    assert.is(await tunnel.next(), 'HELLO THROUGH SLUICE');
    const seen = upgrades.at(-1)!;
    assert.is(seen.headers.upgrade, 'echo');
    assert.is(seen.headers.connection, 'upgrade');
    assert.is(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.is(seen.headers.via, '1.1 sluice');

    // An open tunnel holds the drain until the drain timeout, then is force-closed and counted.
    const closed = new Promise((resolve) => tunnel.socket.once('close', resolve));
    sluice.kill('SIGTERM');
    await sluice.waitForLog((l) => l['event'] === 'listeners.closed');
    tunnel.socket.write('still open');
    assert.is(await tunnel.next(), 'STILL OPEN');
    const timeout = await sluice.waitForLog((l) => l.msg === 'Timeout waiting for connections to drain');
    assert.is(timeout['force_closed'], 1);
    await closed;
    assert.is((await exitWithin(sluice)).code, 0);
  });

  s(`${entry}: an upgrade with no backend able to take it: 502, and the client connection closes`, async () => {
    const sluice = startSluice([
      '-c',
      writeConfig(enter(testConfig([{ port: 1 }], { workers: 1, startup_timeout_ms: 60_000 }), entry)),
      ...DEBUG,
    ]);
    const port = await sluice.port();
    await entered(sluice, entry);
    const answer = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      let text = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      socket.on('close', () => resolve(text));
      socket.on('error', () => {
        /* the test asserts on what the socket received; a reset is one such outcome */
      });
      socket.write('GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    });
    assert.match(answer, /^HTTP\/1\.1 502 /);
    sluice.kill('SIGTERM');
    await exitWithin(sluice);
  });

  s.run();
}
