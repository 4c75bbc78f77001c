/**
 * HTTP/2 downstream, end to end on real sessions: h2c with prior knowledge
 * beside HTTP/1.1 on one plain port, ALPN h2 on a TLS port, each stream one
 * request through the same core (Host from :authority, X-Forwarded-*, the
 * access log), RFC 9113 §8.2's header rules, bodies and trailers both ways,
 * flow control under a slow reader, and the limits.
 */
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { get, until } from '../support/http.ts';
import { testCa, type TestCa } from '../support/certs.ts';
import { killAll, type SluiceProcess, startRouting, stopSluice } from '../support/sluice-process.ts';
import { testConfig } from '../support/config-file.ts';
import { HEALTH_PATH } from '../support/upstream.ts';
import { CODE, FLAG, frame, FRAME, headerBlock, rawH2, requestHeaders, rstCodeOf } from '../support/h2-raw.ts';

interface Seen {
  url: string;
  headers: IncomingMessage['headers'];
  body: number;
  trailers: Record<string, string>;
}

/** An upstream that records each request (its body size too), echoes trailers, and serves big bodies. */
async function echoUpstream(): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    if (req.url === HEALTH_PATH) return void res.writeHead(200, { 'content-length': '0' }).end();
    let body = 0;
    req.on('data', (chunk: Buffer) => (body += chunk.length));
    req.on('end', () => {
      seen.push({ url: req.url!, headers: req.headers, body, trailers: req.trailers as Record<string, string> });
      const big = /^\/big\/(\d+)$/.exec(req.url!);
      if (big) {
        const total = Number(big[1]);
        res.writeHead(200, { 'content-length': String(total) });
        const chunk = Buffer.alloc(64 * 1024, 'x');
        let sent = 0;
        const pump = () => {
          while (sent < total) {
            const piece = chunk.subarray(0, Math.min(chunk.length, total - sent));
            sent += piece.length;
            if (!res.write(piece)) return void res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      res.write(`got ${body}\n`);
      res.addTrailers({ 'x-checksum': `n=${body}` });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

interface Ctx {
  ca?: TestCa;
  upstream?: Awaited<ReturnType<typeof echoUpstream>>;
  sluice?: SluiceProcess;
  accessLog?: string;
  /** Plain with http2, TLS with http2, TLS without. */
  ports?: number[];
}
const h2 = suite<Ctx>('http2');

h2.before(async (ctx) => {
  ctx.ca = testCa();
  const site = ctx.ca.leaf('site', ['h2.test']);
  ctx.upstream = await echoUpstream();
  const base = testConfig([{ port: ctx.upstream.port }], { workers: 1 });
  const { listen_host: _host, listen_port: _port, ...proxy } = base.proxy;
  const config = join(ctx.ca.dir, 'config.json');
  ctx.accessLog = join(ctx.ca.dir, 'access.log');
  const tls = { cert: basename(site.cert), key: basename(site.key) };
  writeFileSync(
    config,
    JSON.stringify({
      ...base,
      proxy,
      access_log: { file: ctx.accessLog },
      listeners: [
        { host: '127.0.0.1', port: 0, http2: true, max_concurrent_streams: 50 },
        { host: '127.0.0.1', port: 0, http2: true, tls },
        { host: '127.0.0.1', port: 0, tls },
      ],
    }),
  );
  const started = await startRouting(['-c', config], 1, 1);
  ctx.sluice = started.sluice;
  ctx.ports = ctx.sluice.lines.find((l) => l['event'] === 'listeners.listening')!['ports'] as number[];
});

h2.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  await new Promise((resolve) => ctx.upstream?.server.close(resolve));
  killAll();
});

interface Answer {
  headers: IncomingHttpHeaders;
  body: Buffer;
  trailers: IncomingHttpHeaders;
}

/** One request on `session`; the body is read at `readDelayMs` per chunk when given (a slow reader). */
function h2Request(
  session: ClientHttp2Session,
  headers: Record<string, string>,
  body?: Buffer | string[],
  readDelayMs = 0,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined, waitForTrailers: Array.isArray(body) });
    const chunks: Buffer[] = [];
    let answer: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    stream.on('response', (h) => (answer = h));
    // ClientHttp2Stream's types have no 'trailers' overload: its listener is typed (...args: any[]).
    stream.on('trailers', (t: IncomingHttpHeaders) => (trailers = t));
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (readDelayMs > 0) {
        stream.pause();
        setTimeout(() => stream.resume(), readDelayMs);
      }
    });
    stream.on('end', () => resolve({ headers: answer, body: Buffer.concat(chunks), trailers }));
    stream.on('error', reject);
    if (Array.isArray(body)) {
      // Parts written one by one, then the trailers: a streamed upload.
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-sent': 'parts' }));
      for (const part of body) stream.write(part);
      stream.end();
    } else if (body !== undefined) stream.end(body);
  });
}

/** One HTTP/1.1 GET over TLS offering `alpn`: what ALPN chose, and the status. */
function httpsGet(port: number, ca: string, alpn: string[]): Promise<{ alpn: string | false; status: number }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'h2.test', ALPNProtocols: alpn });
    let text = '';
    socket.once('secureConnect', () =>
      socket.write('GET /tls-http1 HTTP/1.1\r\nHost: h2.test\r\nConnection: close\r\n\r\n'),
    );
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    socket.once('error', reject);
    socket.once('end', () => resolve({ alpn: socket.alpnProtocol ?? false, status: Number(text.split(' ')[1]) }));
  });
}

const h2c = (port: number) => connect(`http://127.0.0.1:${port}`);

h2('h2c with prior knowledge and HTTP/1.1 on the same plain port, both through the core', async (ctx) => {
  const session = h2c(ctx.ports![0]!);
  try {
    const before = ctx.upstream!.seen.length;
    const answer = await h2Request(session, { ':path': '/over-h2c?q=1', ':authority': 'api.h2.test', cookie: 'a=1' });
    assert.is(answer.headers[':status'], 200);
    assert.ok(answer.headers['x-request-id'], 'the request id comes back');
    const over = await get(ctx.ports![0]!, '/over-http1');
    assert.is(over.status, 200);
    const seen = ctx.upstream!.seen.slice(before);
    const viaH2 = seen.find((s) => s.url === '/over-h2c?q=1')!;
    assert.is(viaH2.headers.host, 'api.h2.test', ':authority becomes Host');
    assert.is(viaH2.headers['x-forwarded-proto'], 'http');
    assert.is(viaH2.headers['x-forwarded-host'], 'api.h2.test');
    assert.is(viaH2.headers['x-forwarded-for'], '127.0.0.1');
    assert.is(viaH2.headers.via, '1.1 sluice');
    assert.is(viaH2.headers.cookie, 'a=1');
    assert.ok(seen.some((s) => s.url === '/over-http1'));
  } finally {
    session.close();
  }
});

h2('the access log records an HTTP/2 stream as protocol HTTP/2.0, one line per stream', async (ctx) => {
  const session = h2c(ctx.ports![0]!);
  try {
    await Promise.all([1, 2, 3].map((n) => h2Request(session, { ':path': `/logged/${n}` })));
  } finally {
    session.close();
  }
  const lines = () =>
    readFileSync(ctx.accessLog!, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const ours = () => lines().filter((l) => String(l['path']).startsWith('/logged/'));
  const logged = await until(ours, (found) => found.length === 3);
  assert.equal(
    logged.map((l) => l['protocol']),
    ['HTTP/2.0', 'HTTP/2.0', 'HTTP/2.0'],
  );
  assert.equal(
    logged.map((l) => l['status']),
    [200, 200, 200],
  );
  assert.equal(
    logged.map((l) => l['host']),
    Array(3).fill(`127.0.0.1:${ctx.ports![0]!}`),
  );
});

h2('ALPN: a TLS listener with http2 chooses h2, or http/1.1 for a client that offers only it', async (ctx) => {
  const ca = ctx.ca!.pem;
  const session = connect(`https://127.0.0.1:${ctx.ports![1]}`, { ca, servername: 'h2.test' });
  try {
    const before = ctx.upstream!.seen.length;
    const answer = await h2Request(session, { ':path': '/over-h2' });
    assert.is(answer.headers[':status'], 200);
    assert.is(session.alpnProtocol, 'h2');
    assert.is(
      ctx.upstream!.seen.slice(before).find((s) => s.url === '/over-h2')?.headers['x-forwarded-proto'],
      'https',
    );
  } finally {
    session.close();
  }
  const http1 = await httpsGet(ctx.ports![1]!, ca, ['http/1.1']);
  assert.is(http1.alpn, 'http/1.1');
  assert.is(http1.status, 200);
  // A TLS listener without http2 still offers only http/1.1.
  const without = await httpsGet(ctx.ports![2]!, ca, ['h2', 'http/1.1']);
  assert.is(without.alpn, 'http/1.1');
});

h2(
  'a streamed request body and its trailers reach the upstream; its response trailers reach the client',
  async (ctx) => {
    const session = h2c(ctx.ports![0]!);
    try {
      const parts = Array.from({ length: 20 }, () => 'y'.repeat(10_000));
      const answer = await h2Request(session, { ':method': 'POST', ':path': '/upload' }, parts);
      assert.is(answer.headers[':status'], 200);
      assert.is(answer.body.toString(), 'got 200000\n');
      assert.is(answer.trailers['x-checksum'], 'n=200000');
      const seen = ctx.upstream!.seen.find((s) => s.url === '/upload')!;
      assert.is(seen.body, 200_000);
      assert.is(seen.trailers['x-sent'], 'parts');
    } finally {
      session.close();
    }
  },
);

h2('flow control: a slow reader gets a large body whole, paced by its window', async (ctx) => {
  const session = h2c(ctx.ports![0]!);
  try {
    const size = 4 * 1024 * 1024;
    const answer = await h2Request(session, { ':path': `/big/${size}` }, undefined, 2);
    assert.is(answer.headers[':status'], 200);
    assert.is(answer.body.length, size);
  } finally {
    session.close();
  }
});

h2(
  'RFC 9113 §8.2: an uppercase name, a connection header, TE other than trailers: the stream is reset, PROTOCOL_ERROR',
  async (ctx) => {
    const client = await rawH2(ctx.ports![0]!);
    try {
      const before = ctx.upstream!.seen.length;
      client.request(1, requestHeaders('/bad-upper', [['X-Upper', 'v']]));
      client.request(3, requestHeaders('/bad-connection', [['connection', 'keep-alive']]));
      client.request(5, requestHeaders('/bad-te', [['te', 'gzip']]));
      client.request(7, requestHeaders('/good-te', [['te', 'trailers']]));
      for (const stream of [1, 3, 5]) {
        const reset = await client.next((f) => f.type === FRAME.RST_STREAM && f.stream === stream);
        assert.is(rstCodeOf(reset), CODE.PROTOCOL_ERROR, `stream ${stream}`);
      }
      await client.next((f) => f.type === FRAME.HEADERS && f.stream === 7);
      const urls = ctx.upstream!.seen.slice(before).map((s) => s.url);
      assert.equal(
        urls.filter((u) => u.startsWith('/bad')),
        [],
        'nothing refused reached the upstream',
      );
      assert.ok(urls.includes('/good-te'));
    } finally {
      client.close();
    }
  },
);

h2(
  'limits: SETTINGS say max_concurrent_streams; a header list over 16 KiB is refused, one under it served',
  async (ctx) => {
    const client = await rawH2(ctx.ports![0]!);
    try {
      const settings = await client.next((f) => f.type === FRAME.SETTINGS && f.flags === 0);
      const values = new Map<number, number>();
      for (let i = 0; i < settings.payload.length; i += 6)
        values.set(settings.payload.readUInt16BE(i), settings.payload.readUInt32BE(i + 2));
      assert.is(values.get(0x3), 50, 'SETTINGS_MAX_CONCURRENT_STREAMS');
      assert.is(values.get(0x6), 16 * 1024, 'SETTINGS_MAX_HEADER_LIST_SIZE');
      client.request(1, requestHeaders('/small-headers', [['x-big', 'v'.repeat(8 * 1024)]]));
      await client.next((f) => f.type === FRAME.HEADERS && f.stream === 1);
      // Sent as one HEADERS frame (the client's SETTINGS allow frames up to 16 KiB; this one exceeds it, so CONTINUATION).
      const block = requestHeaders('/huge-headers', [['x-big', 'v'.repeat(20 * 1024)]]);
      const bytes = headerBlock(block);
      client.send(
        Buffer.concat([
          frame(FRAME.HEADERS, FLAG.END_STREAM, 3, bytes.subarray(0, 16_000)),
          frame(9, FLAG.END_HEADERS, 3, bytes.subarray(16_000)),
        ]),
      );
      const refused = await client.next(
        (f) =>
          (f.type === FRAME.RST_STREAM && f.stream === 3) ||
          f.type === FRAME.GOAWAY ||
          (f.type === FRAME.HEADERS && f.stream === 3),
      );
      assert.not.equal(refused.type, FRAME.HEADERS, 'the oversized request was not answered as usual');
      assert.ok(!ctx.upstream!.seen.some((s) => s.url === '/huge-headers'), 'nor forwarded');
    } finally {
      client.close();
    }
  },
);

h2.run();
