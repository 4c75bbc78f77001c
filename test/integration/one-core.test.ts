/**
 * One forwarding core (issue #13): a request that Node's parser reads (one
 * the strict codec hands over: a TE header, HTTP/1.0, Expect) goes through
 * the same exchange as the fast path's. Seen from outside, that means the
 * same upstream connections, the same header rules, and a body framed again
 * for the upstream when llhttp has taken its chunks apart.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rawRequest } from '../support/http.ts';
import { killAll, startRouting, stopSluice, type SluiceProcess } from '../support/sluice-process.ts';
import { testConfig, writeConfig } from '../support/config-file.ts';
import { HEALTH_PATH } from '../support/upstream.ts';

interface Seen {
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server;
let sluice: SluiceProcess | undefined;
let port = 0;
const seen: Seen[] = [];
/** The upstream connections that carried forwarded requests (health probes have their own). */
const forwardingSockets = new Set<Socket>();

test.before(async () => {
  server = createServer((req, res) => {
    if (req.url === HEALTH_PATH) return void res.end();
    forwardingSockets.add(req.socket);
    let body = '';
    req.setEncoding('latin1').on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      seen.push({ url: req.url ?? '', headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`got ${body.length}\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const upstreamPort = (server.address() as AddressInfo).port;
  const config = writeConfig(testConfig([{ port: upstreamPort }], { workers: 1 }, { interval_ms: 60_000 }));
  ({ sluice, port } = await startRouting(['-c', config], 1, 1));
});

test.after(async () => {
  await stopSluice(sluice);
  killAll();
  server.close();
  server.closeAllConnections();
});

test('requests read by the codec and by llhttp share one upstream connection and the same header rules', async () => {
  const fast = await rawRequest(port, 'GET /fast HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
  // `TE` is one of the headers the codec hands to Node's parser.
  const viaNode = await rawRequest(
    port,
    'GET /node HTTP/1.1\r\nHost: a.test\r\nTE: trailers\r\nConnection: close\r\n\r\n',
  );
  const old = await rawRequest(port, 'GET /old HTTP/1.0\r\nHost: a.test\r\n\r\n');
  assert.is(fast, 'HTTP/1.1 200 OK');
  assert.is(viaNode, 'HTTP/1.1 200 OK');
  assert.is(old, 'HTTP/1.1 200 OK');
  // One keep-alive connection to the backend served all three: one pool, not one per engine.
  assert.is(forwardingSockets.size, 1);
  const byUrl = new Map(seen.map((s) => [s.url, s]));
  for (const url of ['/fast', '/node', '/old']) {
    const request = byUrl.get(url);
    assert.ok(request, `${url} reached the upstream`);
    assert.is(request.headers['x-forwarded-for'], '127.0.0.1');
    assert.is(request.headers['x-forwarded-host'], 'a.test');
    assert.match(String(request.headers.via), /sluice/);
    assert.is(request.headers['te'], undefined, `${url}: TE is hop-by-hop`);
    assert.ok(request.headers['x-request-id'], `${url}: a request id was added`);
  }
});

test('a chunked upload that llhttp decoded goes up chunked again, whole', async () => {
  const answer = await new Promise<string>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
    socket.on('close', () => resolve(received));
    socket.on('error', () => {
      /* the assertions read what arrived */
    });
    socket.setTimeout(5_000, () => socket.destroy());
    socket.write('POST /upload HTTP/1.1\r\nHost: a.test\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\n\r\n');
    socket.write('5\r\nhello\r\n');
    socket.end('6\r\n world\r\n0\r\n\r\n');
  });
  assert.match(answer, /^HTTP\/1\.1 200 OK/);
  assert.match(answer, /got 11\n/);
  const upload = seen.find((s) => s.url === '/upload');
  assert.is(upload?.body, 'hello world');
  assert.is(upload?.headers['transfer-encoding'], 'chunked');
});

test('Expect: 100-continue is answered by the proxy and the body follows to the upstream', async () => {
  const answer = await new Promise<string>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      received += chunk;
      if (received.startsWith('HTTP/1.1 100 Continue\r\n\r\n') && !socket.writableEnded) socket.end('abcd');
    });
    socket.on('close', () => resolve(received));
    socket.on('error', () => {
      /* the assertions read what arrived */
    });
    socket.setTimeout(5_000, () => socket.destroy());
    socket.write('PUT /expect HTTP/1.1\r\nHost: a.test\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n');
  });
  assert.match(answer, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/);
  const put = seen.find((s) => s.url === '/expect');
  assert.is(put?.body, 'abcd');
  assert.is(put?.headers.expect, undefined);
});

test.run();
