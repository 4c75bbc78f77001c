/**
 * TLS listeners end to end, on real TLS sockets: SNI picks the certificate,
 * ALPN says http/1.1, X-Forwarded-Proto says https, a plain listener beside
 * it still says http, and both go through the same core (routes, access log).
 */
import { connect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { get } from '../support/http.ts';
import type { HealthDocument } from '../support/documents.ts';
import { testCa, type TestCa } from '../support/certs.ts';
import { killAll, type SluiceProcess, startRouting, stopSluice } from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { testConfig } from '../support/config-file.ts';
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

interface Ctx {
  ca?: TestCa;
  a?: TestUpstream;
  sluice?: SluiceProcess;
  plainPort?: number;
  tlsPort?: number;
}
const tls = suite<Ctx>('tls');

/** One HTTP/1.1 request over a fresh TLS connection; what the handshake chose and the answer. */
export function httpsGet(
  port: number,
  options: { servername?: string; ca: string; path?: string; alpn?: string[]; host?: string },
): Promise<{ subject: string; alpn: string | false; status: number; head: string; body: string; socket: TLSSocket }> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      ca: options.ca,
      servername: options.servername,
      ALPNProtocols: options.alpn ?? ['http/1.1'],
      // The name checked is the one sent; without SNI, the default certificate's.
      checkServerIdentity: () => undefined,
    });
    let text = '';
    socket.setTimeout(5_000, () => socket.destroy(new Error('timed out')));
    socket.once('secureConnect', () => {
      const host = options.host ?? options.servername ?? 'localhost';
      socket.write(`GET ${options.path ?? '/'} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    socket.once('error', reject);
    socket.once('end', () => {
      const [head = '', body = ''] = text.split('\r\n\r\n');
      resolve({
        // An empty object when the peer sent no certificate (Node's docs), which its type leaves out.
        subject: String((socket.getPeerCertificate() as Partial<PeerCertificate>).subject?.CN ?? ''),
        alpn: socket.alpnProtocol ?? false,
        status: Number(head.split(' ')[1]),
        head,
        body,
        socket,
      });
    });
  });
}

tls.before(async (ctx) => {
  ctx.ca = testCa();
  const site = ctx.ca.leaf('site', ['default.test']);
  const api = ctx.ca.leaf('api', ['api.example.com']);
  const wide = ctx.ca.leaf('wide', ['*.example.org']);
  const narrow = ctx.ca.leaf('narrow', ['*.deep.example.org']);
  ctx.a = await startUpstream('a');
  const base = testConfig([{ port: ctx.a.port }], { workers: 2 });
  const { listen_host: _host, listen_port: _port, ...proxy } = base.proxy;
  const config = join(ctx.ca.dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      ...base,
      proxy,
      listeners: [
        { host: '127.0.0.1', port: 0 },
        {
          host: '127.0.0.1',
          port: 0,
          tls: {
            // Relative to the config file, which lies beside them.
            cert: basename(site.cert),
            key: basename(site.key),
            sni: [
              { server_names: ['api.example.com'], cert: basename(api.cert), key: basename(api.key) },
              { server_names: ['*.example.org'], cert: basename(wide.cert), key: basename(wide.key) },
              {
                server_names: ['*.deep.example.org', 'exact.deep.example.org'],
                cert: basename(narrow.cert),
                key: basename(narrow.key),
              },
            ],
          },
        },
      ],
    }),
  );
  const started = await startRouting(['-c', config], 2, 1);
  ctx.sluice = started.sluice;
  const listening = ctx.sluice.lines.find((l) => l['event'] === 'listeners.listening')!;
  [ctx.plainPort, ctx.tlsPort] = listening['ports'] as number[];
});

tls.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  await ctx.a?.close();
  killAll();
});

tls('SNI: the exact name, then the longest wildcard, else the listener certificate', async (ctx) => {
  const subject = async (servername?: string) =>
    (await httpsGet(ctx.tlsPort!, { servername, ca: ctx.ca!.pem })).subject;
  assert.is(await subject('api.example.com'), 'api.example.com');
  assert.is(await subject('API.Example.com'), 'api.example.com');
  assert.is(await subject('www.example.org'), '*.example.org');
  assert.is(await subject('a.b.example.org'), '*.example.org');
  assert.is(await subject('x.deep.example.org'), '*.deep.example.org');
  assert.is(await subject('exact.deep.example.org'), '*.deep.example.org');
  assert.is(await subject('example.org'), 'default.test');
  assert.is(await subject('other.test'), 'default.test');
  assert.is(await subject(undefined), 'default.test');
});

tls('ALPN: http/1.1 is chosen, also when the client offers h2 first', async (ctx) => {
  const answer = await httpsGet(ctx.tlsPort!, {
    servername: 'api.example.com',
    ca: ctx.ca!.pem,
    alpn: ['h2', 'http/1.1'],
  });
  assert.is(answer.alpn, 'http/1.1');
  assert.is(answer.status, 200);
});

tls('a TLS request reaches the upstream with X-Forwarded-Proto: https; a plain one with http', async (ctx) => {
  const before = ctx.a!.received.length;
  const secure = await httpsGet(ctx.tlsPort!, { servername: 'api.example.com', ca: ctx.ca!.pem, path: '/over-tls' });
  assert.is(secure.status, 200);
  assert.is(secure.body, 'a\n');
  const plain = await get(ctx.plainPort!, '/over-plain');
  assert.is(plain.status, 200);
  const received = ctx.a!.received.slice(before);
  assert.is(received.find((r) => r.url === '/over-tls')?.headers['x-forwarded-proto'], 'https');
  assert.is(received.find((r) => r.url === '/over-plain')?.headers['x-forwarded-proto'], 'http');
});

tls("what the fast path hands to Node's server (the proxy's own /health) is served over TLS too", async (ctx) => {
  const answer = await httpsGet(ctx.tlsPort!, { servername: 'api.example.com', ca: ctx.ca!.pem, path: '/health' });
  assert.is(answer.status, 200);
  assert.equal((JSON.parse(answer.body) as HealthDocument).status, 'healthy');
});

tls('a keep-alive TLS connection serves one request after another', async (ctx) => {
  const socket = connect({ host: '127.0.0.1', port: ctx.tlsPort!, ca: ctx.ca!.pem, servername: 'api.example.com' });
  await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  let text = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const answers = (n: number) => text.split('HTTP/1.1 200').length - 1 >= n;
  for (let i = 1; i <= 3; i++) {
    socket.write(`GET /keep-${i} HTTP/1.1\r\nHost: api.example.com\r\n\r\n`);
    for (let wait = 0; !answers(i) && wait < 100; wait++) await new Promise((resolve) => socket.once('data', resolve));
    assert.ok(answers(i), text);
  }
  socket.destroy();
});

tls.run();
