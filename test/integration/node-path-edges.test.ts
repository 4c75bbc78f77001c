/**
 * What an upstream or a client may do that Node's response cannot carry as
 * it is, on the core's Node path (requests llhttp reads, HTTP/2 streams):
 * each case gets the answer nginx gives, and the listener thread lives on.
 * Also two exchange rules found by review: a retried upload larger than a
 * socket buffer, and the Connection-named fields of a closing request.
 */
import { once } from 'node:events';
import { connect as connectHttp2, constants } from 'node:http2';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { frame, FRAME, rawH2, requestHeaders } from '../support/h2-raw.ts';
import { killAll, startRouting, stopSluice, type SluiceProcess } from '../support/sluice-process.ts';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';
import { HEALTH_PATH } from '../support/upstream.ts';
import { rawAnswer, until } from '../support/http.ts';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';

/** What the raw upstream answers, by path. */
const answers: Record<string, string> = {
  '/trailers':
    'HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 5\r\nKeep-Alive: x\r\n\r\n',
  '/repeated':
    'HTTP/1.1 200 OK\r\nX-Content-Type-Options: nosniff\r\nX-Content-Type-Options: nosniff\r\nHTTP2-Settings: x\r\nContent-Length: 2\r\n\r\nok',
  '/status099': 'HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok',
  '/gzip-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nzz\r\n0\r\n\r\n',
};

interface Seen {
  head: string;
  /** The body as it came, framing included; complete: the upstream saw all of its framing. */
  body: string;
  complete: boolean;
}

let upstream: Server;
let refusingPort = 0;
const seen: Seen[] = [];
/** Paths whose head has reached the upstream (the body may still be coming). */
const arrived: string[] = [];
let sluice: SluiceProcess | undefined;
let port = 0;
let h2Port = 0;
let accessLog = '';

/** An HTTP/1.1 upstream on raw sockets: it answers from `answers`, or echoes the body's length. */
function rawUpstream(): Promise<Server> {
  const server = createServer((socket: Socket) => {
    let data = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      data += chunk;
      for (;;) {
        const end = data.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = data.slice(0, end);
        const path = head.split(' ')[1] ?? '/';
        if (!arrived.includes(path)) arrived.push(path);
        const length = /\r\ncontent-length: *(\d+)/i.exec(head);
        const chunked = /\r\ntransfer-encoding: *chunked/i.test(head);
        const rest = data.slice(end + 4);
        let bodyEnd: number;
        if (length) bodyEnd = Number(length[1]);
        else if (chunked) bodyEnd = rest.includes('0\r\n') ? rest.lastIndexOf('\r\n\r\n') + 4 : -1;
        else bodyEnd = 0;
        if (bodyEnd < 0 || rest.length < bodyEnd || (chunked && bodyEnd < 4)) return;
        data = rest.slice(bodyEnd);
        if (path === HEALTH_PATH) {
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
          continue;
        }
        seen.push({ head, body: rest.slice(0, bodyEnd), complete: true });
        const answer = answers[path];
        socket.write(answer ?? `HTTP/1.1 200 OK\r\nContent-Length: ${String(bodyEnd).length}\r\n\r\n${bodyEnd}`);
      }
    });
    socket.on('close', () => {
      // A request whose body never ended: what the upstream saw of it.
      if (data.includes('\r\n\r\n') && !data.startsWith(`GET ${HEALTH_PATH}`))
        seen.push({ head: data.slice(0, data.indexOf('\r\n\r\n')), body: '', complete: false });
    });
    socket.on('error', () => {
      /* a client reset shows as an incomplete request above */
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Raw bytes on a fresh connection to the plain listener; resolves with everything received once it closes. */
const exchange = (bytes: string): Promise<string> => rawAnswer(port, bytes);

test.before(async () => {
  upstream = await rawUpstream();
  // A backend that is healthy at start and then refuses: the first attempts to it fail on connect.
  const refusing = await rawUpstream();
  refusingPort = (refusing.address() as AddressInfo).port;
  const dir = tempDir();
  accessLog = join(dir, 'access.log');
  const upstreamPort = (upstream.address() as AddressInfo).port;
  h2Port = 0;
  const config = {
    ...testConfig([{ port: upstreamPort }, { port: refusingPort }], { workers: 1 }, { interval_ms: 600_000 }),
    listeners: [
      { host: '127.0.0.1', port: 0 },
      { host: '127.0.0.1', port: 0, http2: true },
    ],
    access_log: { file: accessLog, format: 'json' },
  };
  const { listen_host: _host, listen_port: _port, ...proxy } = config.proxy;
  ({ sluice, port } = await startRouting(['-c', writeConfig({ ...config, proxy })], 1, 2));
  const listening = sluice.lines.find((l) => l['event'] === 'listeners.listening');
  const ports = listening?.['ports'] as number[];
  [port, h2Port] = [ports[0]!, ports[1]!];
  refusing.close();
  refusing.unref();
  await once(refusing, 'close');
});

test.after(async () => {
  await stopSluice(sluice);
  killAll();
  upstream.close();
});

const survived = () =>
  assert.not.ok(
    sluice!.lines.some((l) => l['event'] === 'actor.failed'),
    'no thread failed',
  );

test('an HTTP/1.0 client gets a chunked response unchunked, without its Trailer field or trailers', async () => {
  const answer = await exchange('GET /trailers HTTP/1.0\r\nHost: a\r\n\r\n');
  assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
  assert.not.match(answer.toLowerCase(), /\r\ntrailer:/);
  assert.ok(answer.endsWith('\r\n\r\nhello'), JSON.stringify(answer));
  survived();
});

test('an HTTP/2 client gets trailers without connection-specific fields, and one value of a single-value field', async () => {
  const session = connectHttp2(`http://127.0.0.1:${h2Port}`);
  // A session that fails (the listener gone) fails the requests on it, which the test reports.
  session.on('error', () => undefined);
  try {
    const get = (path: string) =>
      new Promise<{ headers: Record<string, unknown>; trailers: Record<string, unknown>; body: string }>(
        (resolve, reject) => {
          const stream = session.request({ ':path': path });
          let headers: Record<string, unknown> = {};
          let trailers: Record<string, unknown> = {};
          let body = '';
          stream.on('response', (h: Record<string, unknown>) => (headers = h));
          stream.on('trailers', (t: Record<string, unknown>) => (trailers = t));
          stream.setEncoding('latin1').on('data', (chunk: string) => (body += chunk));
          stream.on('end', () => resolve({ headers, trailers, body }));
          stream.on('error', reject);
        },
      );
    const withTrailers = await get('/trailers');
    assert.is(withTrailers.body, 'hello');
    assert.is(withTrailers.trailers['x-sum'], '5');
    assert.is(withTrailers.trailers['keep-alive'], undefined);
    const repeated = await get('/repeated');
    assert.is(repeated.headers[':status'], 200);
    assert.is(repeated.headers['x-content-type-options'], 'nosniff');
    assert.is(repeated.headers['http2-settings'], undefined);
  } finally {
    session.close();
  }
  survived();
});

test('a status Node cannot write, or a transfer coding besides chunked, is a 502 on the Node path', async () => {
  // `TE` makes the codec hand the request to llhttp.
  const odd = await exchange('GET /status099 HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: close\r\n\r\n');
  assert.match(odd, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  const gzip = await exchange('GET /gzip-chunked HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: close\r\n\r\n');
  assert.match(gzip, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  survived();
});

test('the fields a closing request names in Connection are dropped on the way up', async () => {
  await exchange('GET /named HTTP/1.0\r\nHost: a\r\nConnection: X-Secret\r\nX-Secret: s\r\n\r\n');
  await exchange(
    'GET /named2 HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: close, X-Secret\r\nX-Secret: s\r\n\r\n',
  );
  for (const path of ['/named', '/named2']) {
    const request = seen.find((s) => s.head.startsWith(`GET ${path} `));
    assert.ok(request, `${path} reached the upstream`);
    assert.not.match(request.head.toLowerCase(), /\r\nx-secret:/);
  }
});

test('an upload bigger than a socket buffer, whose first backend refuses, is retried whole', async () => {
  const body = 'b'.repeat(200_000);
  // Round robin over the two backends: of four uploads, two go first to the refusing one.
  for (let i = 0; i < 4; i++) {
    const answer = await exchange(
      `POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(answer.endsWith('\r\n\r\n200000'), answer.slice(-40));
  }
  await found(() => logLines().find((l) => l['path'] === '/upload' && l['attempts'] === 2 && l['status'] === 200));
});

test('an HTTP/2 upload the client resets never reaches the upstream as a whole one, and is logged 499', async () => {
  const h2 = await rawH2(h2Port);
  try {
    h2.request(1, requestHeaders('/reset-upload', [], 'POST'), false);
    h2.send(frame(FRAME.DATA, 0, 1, Buffer.alloc(1_000, 0x61)));
    // The request reaches the upstream (its head, then the body as it streams) before the reset.
    await found(() => (arrived.includes('/reset-upload') ? true : undefined));
    const cancel = Buffer.alloc(4);
    cancel.writeUInt32BE(constants.NGHTTP2_CANCEL);
    h2.send(frame(FRAME.RST_STREAM, 0, 1, cancel));
    const logged = await found(() => logLines().find((l) => l['path'] === '/reset-upload'));
    assert.is(logged['status'], 499);
    const request = await found(() => seen.find((s) => s.head.startsWith('POST /reset-upload ')));
    assert.is(request.complete, false, 'the upstream never saw the last chunk');
  } finally {
    h2.close();
  }
});

test('a half-close in the middle of a body read by llhttp: one 400 and one log line, as on the fast path', async () => {
  const answer = await exchange(
    'POST /half-closed HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nContent-Length: 10\r\n\r\nabc',
  );
  assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
  const line = await found(() => logLines().find((l) => l['path'] === '/half-closed'));
  assert.equal([line['status'], line['error']], [400, 'INVALID_REQUEST_BODY']);
  // The parser's refusal line of the same request would come with it: wait for any later line, then count.
  await exchange('GET /after-half-close HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  await found(() => logLines().find((l) => l['path'] === '/after-half-close'));
  assert.is(
    logLines().filter((l) => l['path'] === '/half-closed' || (l['status'] === 400 && l['path'] === '-')).length,
    1,
  );
});

/** The access log's lines so far (written in batches: a test waits for the one it needs). */
function logLines(): Record<string, unknown>[] {
  // Whole lines only: a batch may be caught in the middle of its write.
  const lines = readFileSync(accessLog, 'utf8').split('\n').slice(0, -1);
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The first value `probe` gives that is not undefined, polled with the suite's `until` (5 s at most). */
async function found<T>(probe: () => T | undefined): Promise<T> {
  return (await until(probe, (value) => value !== undefined)) as T;
}

test.run();
