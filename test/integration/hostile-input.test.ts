/**
 * Malformed requests get their 4xx from the listener and never reach an
 * upstream. Raw sockets, so the bytes are exactly what an attacker sends.
 * Every case runs in every way a request can enter (plain, with request
 * hooks, through a route).
 */
import { connect } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rawRequest } from '../support/http.ts';
import {
  exitWithin,
  killAll,
  type SluiceProcess,
  startRouting,
  startSluice,
  stopSluice,
  transitionTo,
} from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { testConfig, writeConfig } from '../support/config-file.ts';
import { entered, enter, entries } from '../support/entries.ts';

/** Resolves with how long the proxy kept a connection open, and what it sent. */
function heldFor(port: number, send: string): Promise<{ ms: number; received: string }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => {
      /* the test asserts on what the socket received; a reset is one such outcome */
    });
    socket.on('close', () => resolve({ ms: Date.now() - started, received }));
    // An upper bound for the test itself: far above the timeouts under test.
    socket.setTimeout(10_000, () => socket.destroy());
    socket.write(send);
  });
}

const cases: [string, string, string][] = [
  [
    'Content-Length with Transfer-Encoding',
    'POST /smuggle HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    '400',
  ],
  [
    'differing duplicate Content-Length',
    'POST /smuggle HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde',
    '400',
  ],
  ['a space before the colon', 'GET /smuggle HTTP/1.1\r\nHost: t\r\nX-Evil : 1\r\n\r\n', '400'],
  ['a bare LF inside a header value', 'GET /smuggle HTTP/1.1\r\nHost: t\r\nX-Evil: a\nb: c\r\n\r\n', '400'],
  ['a bare CR inside a header value', 'GET /smuggle HTTP/1.1\r\nHost: t\r\nX-Evil: a\rb\r\n\r\n', '400'],
  ['a NUL inside a header value', 'GET /smuggle HTTP/1.1\r\nHost: t\r\nX-Evil: a\u0000b\r\n\r\n', '400'],
  ['an invalid request line', 'GET /smuggle HTTP/1.1 extra\r\nHost: t\r\n\r\n', '400'],
  ['an unknown HTTP version', 'GET /smuggle HTTP/7.1\r\nHost: t\r\n\r\n', '400'],
  ['headers over 16 KiB', `GET /smuggle HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`, '431'],
  ['HTTP/1.1 without Host', 'GET /smuggle HTTP/1.1\r\nX: y\r\n\r\n', '400'],
  // Forwarded as plain chunked, the gzip coding would be silently dropped: nginx answers 501.
  [
    'a transfer coding besides chunked',
    'POST /smuggle HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    '501',
  ],
];

for (const entry of entries) {
  const hostile = suite<{ upstream?: TestUpstream; sluice?: SluiceProcess; port?: number }>(`hostile input (${entry})`);

  hostile.before(async (ctx) => {
    ctx.upstream = await startUpstream('a');
    ({ sluice: ctx.sluice, port: ctx.port } = await startRouting(
      ['-c', writeConfig(enter(testConfig([{ port: ctx.upstream.port }], { workers: 1 }), entry))],
      1,
      1,
    ));
    await entered(ctx.sluice, entry);
  });

  hostile.after(async (ctx) => {
    await stopSluice(ctx.sluice);
    await ctx.upstream?.close();
    killAll();
  });

  hostile(
    `${entry}: a well-formed request is forwarded, even when the client half-closes after sending it (the control case)`,
    async (ctx) => {
      assert.is(
        await rawRequest(ctx.port!, 'GET /fine HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'),
        'HTTP/1.1 200 OK',
      );
      assert.ok(ctx.upstream!.received.some((r) => r.url === '/fine'));
    },
  );

  for (const [what, bytes, status] of cases) {
    hostile(`${entry}: ${what}: ${status}, never forwarded`, async (ctx) => {
      const line = await rawRequest(ctx.port!, bytes);
      assert.match(line, new RegExp(`^HTTP/1\\.1 ${status} `), `got: ${JSON.stringify(line)}`);
      assert.not.ok(
        ctx.upstream!.received.some((r) => r.url.startsWith('/smuggle')),
        'the upstream never saw it',
      );
    });
  }

  hostile(
    `${entry}: HTTP/1.0 with keep-alive and a chunked body: answered, then the connection closes (RFC 9112 §6.1)`,
    async (ctx) => {
      const outcome = await new Promise<{ received: string; closedByProxy: boolean }>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port: ctx.port! });
        let received = '';
        socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
        socket.on('error', () => {
          /* the test asserts on what the socket received; a reset is one such outcome */
        });
        // No half-close from this side: only the proxy can end the connection before the bound.
        const bound = setTimeout(() => resolve({ received, closedByProxy: false }), 3_000);
        socket.on('close', () => {
          clearTimeout(bound);
          resolve({ received, closedByProxy: true });
        });
        socket.write(
          'POST /ten HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
        );
      });
      assert.match(outcome.received, /^HTTP\/1\.1 200 /);
      assert.ok(outcome.closedByProxy, 'the proxy closed the connection after the response');
      assert.ok(ctx.upstream!.received.some((r) => r.url === '/ten'));
    },
  );

  hostile.run();

  const slow = suite(`slow clients (${entry})`);

  slow(
    `${entry}: slowloris: headers not complete within client_header_timeout_ms get 408 and a close, on time`,
    async () => {
      const upstream = await startUpstream('a');
      const config = testConfig([{ port: upstream.port }], {
        workers: 1,
        client_header_timeout_ms: 600,
        client_keepalive_timeout_ms: 400,
      });
      // Debug lines: `entered` reads the one that says request hooks loaded.
      const sluice = startSluice(['-c', writeConfig(enter(config, entry)), '--log-level', 'debug']);
      try {
        const port = await sluice.port();
        await sluice.waitForLog(transitionTo('healthy'));
        await entered(sluice, entry);
        const partial = await heldFor(port, 'GET /slow-headers HTTP/1.1\r\nHost: t\r\nX-Trickle: 1\r\n');
        assert.ok(partial.ms >= 550 && partial.ms < 2_000, `closed after ${partial.ms} ms`);
        assert.match(partial.received, /^HTTP\/1\.1 408 /);
        assert.not.ok(upstream.received.some((r) => r.url === '/slow-headers'));

        const idle = await heldFor(port, 'GET /one HTTP/1.1\r\nHost: t\r\n\r\n');
        assert.match(idle.received, /^HTTP\/1\.1 200 /);
        assert.ok(idle.ms >= 350 && idle.ms < 2_000, `idle keep-alive closed after ${idle.ms} ms`);
      } finally {
        sluice.kill('SIGTERM');
        await exitWithin(sluice);
        await upstream.close();
      }
    },
  );

  slow.run();
}
