/**
 * The data path byte for byte, with raw sockets on both sides: what the
 * upstream receives for each header rule, what the client receives back,
 * HEAD/204/304/trailers/interim responses/pipelining/Expect, and an invalid
 * upstream framing answered 502 with the upstream connection closed. Each
 * case runs in every way a request can enter (plain, with request hooks,
 * through a route): the bytes must be the same in all.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { killAll, type SluiceProcess, startRouting, stopSluice } from '../support/sluice-process.ts';
import { HEALTH_PATH } from '../support/upstream.ts';
import { testConfig, writeConfig } from '../support/config-file.ts';
import { entered, enter, entries } from '../support/entries.ts';
import { ChunkedScanner } from '../../src/listener/http1/chunked.ts';

interface RawUpstream {
  port: number;
  /** Every request head (and body) it received, as bytes (latin1), health probes excluded. */
  received: string[];
  /** How many of its connections the peer closed. */
  closedByPeer: number;
  /** What to answer to the next forwarded request, given its bytes. */
  answer: (request: string) => string;
  close(): Promise<void>;
}

/** A backend that answers whatever `answer` returns, byte for byte; probes get a 200. */
async function rawUpstream(): Promise<RawUpstream> {
  const sockets = new Set<Socket>();
  const answeredEarly = new Set<Socket>();
  const upstream: RawUpstream = {
    port: 0,
    received: [],
    closedByPeer: 0,
    answer: () => 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n',
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    let buffer = '';
    socket.setEncoding('latin1');
    socket.on('end', () => upstream.closedByPeer++);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {
      /* the test asserts on what the socket received; a reset is one such outcome */
    });
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        let length = Number(/\r\ncontent-length: *(\d+)/i.exec(buffer.slice(0, end))?.[1] ?? 0);
        if (/\r\ntransfer-encoding: *chunked/i.test(buffer.slice(0, end))) {
          const at = new ChunkedScanner().scan(Buffer.from(buffer.slice(end + 4), 'latin1'));
          if (at === -1) return;
          length = at;
        }
        // A backend that refuses a body without reading it (413), and still expects the rest.
        if (/\r\nx-answer-early:/i.test(buffer.slice(0, end)) && !answeredEarly.has(socket)) {
          answeredEarly.add(socket);
          socket.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n');
        }
        if (buffer.length < end + 4 + length) return;
        if (answeredEarly.delete(socket)) {
          buffer = buffer.slice(end + 4 + length);
          continue;
        }
        const request = buffer.slice(0, end + 4 + length);
        buffer = buffer.slice(end + 4 + length);
        if (request.startsWith(`GET ${HEALTH_PATH} `)) {
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
          continue;
        }
        upstream.received.push(request);
        socket.write(upstream.answer(request), 'latin1');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  upstream.port = (server.address() as { port: number }).port;
  return upstream;
}

/** Writes `writes` (the last request should say `Connection: close`), returns all it got back until the close. */
function exchange(port: number, ...writes: string[]): Promise<string> {
  return send(port, writes, false);
}

/** `halfClose`: end our side after the last write, as a client that has nothing more to send. */
function send(port: number, writes: string[], halfClose: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no close within 5 s; got ${JSON.stringify(received)}`)));
    for (const write of writes) socket.write(write, 'latin1');
    if (halfClose) socket.end();
  });
}

// Every case in every way a request can enter (test/support/entries.ts): the same bytes must go up and come back in each.
for (const entry of entries) {
  const s = suite(`data path (${entry})`);
  // Cases about the bytes as the upstream framed them (chunk extensions, header case, what closes the client
  // connection) hold where sluice writes the client's bytes itself. Node's server reads and writes the llhttp
  // entry's: it frames the response anew (Date, Keep-Alive, its own header case) and reads an unread body to
  // its end, so those cases are the fast path's own; every other case holds in every entry.
  const exact = entry === 'llhttp' ? () => undefined : s;
  let upstream: RawUpstream;
  let sluice: SluiceProcess;
  let port: number;

  s.before(async () => {
    upstream = await rawUpstream();
    // Byte-for-byte heads: without the request-id line sluice adds by default (test/access-log-e2e.test.ts pins that).
    // Every entry keeps it: the bytes forwarded must be the same in each.
    const proxy = { workers: 1, upstream_timeout_ms: 2_000, request_id_header: null };
    ({ sluice, port } = await startRouting(
      ['-c', writeConfig(enter(testConfig([{ port: upstream.port }], proxy), entry))],
      1,
      1,
    ));
    await entered(sluice, entry);
  });

  s.after(async () => {
    await stopSluice(sluice);
    await upstream.close();
    killAll();
  });

  s(
    `${entry}: request headers, byte for byte: hop-by-hop and Connection-named ones dropped, forwarding headers appended, Host and order kept`,
    async () => {
      upstream.received.length = 0;
      await exchange(
        port,
        'GET /p?q=1 HTTP/1.1\r\nHost: example.test\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\nX-Keep: Yes\r\n' +
          'X-Forwarded-For: 10.9.8.7\r\nVia: 1.0 edge\r\nUser-Agent: raw/1\r\n\r\n' +
          'GET /last HTTP/1.1\r\nHost: example.test\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\nConnection: close\r\n\r\n',
      );
      assert.is(
        upstream.received[0],
        'GET /p?q=1 HTTP/1.1\r\nHost: example.test\r\nX-Keep: Yes\r\nUser-Agent: raw/1\r\n' +
          'x-forwarded-for: 10.9.8.7, 127.0.0.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: example.test\r\nvia: 1.0 edge, 1.1 sluice\r\n\r\n',
      );
      // X-Forwarded-Proto and -Host set by a proxy in front are kept, not added again.
      assert.is(
        upstream.received[1],
        'GET /last HTTP/1.1\r\nHost: example.test\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\nx-forwarded-for: 127.0.0.1\r\nvia: 1.1 sluice\r\n\r\n',
      );
    },
  );

  s(`${entry}: a request body with Content-Length reaches the upstream whole`, async () => {
    upstream.received.length = 0;
    const body = 'x'.repeat(70_000);
    const answer = await exchange(
      port,
      `POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
      body,
    );
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(upstream.received[0]!.endsWith(`\r\n\r\n${body}`));
  });

  exact(
    `${entry}: a chunked request body goes up as the client framed it, extensions and trailers included`,
    async () => {
      upstream.answer = () => 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n';
      upstream.received.length = 0;
      const chunks = '5;note=x\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 7\r\n\r\n';
      const answer = await exchange(
        port,
        'POST /chunked-up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
        chunks.slice(0, 9),
        chunks.slice(9),
      );
      assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
      assert.is(
        upstream.received[0],
        `POST /chunked-up HTTP/1.1\r\nHost: t\r\nx-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: t\r\nvia: 1.1 sluice\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}`,
      );
    },
  );

  s(
    `${entry}: a chunked request body that breaks its framing: 400, and the upstream connection that got its start is closed`,
    async () => {
      upstream.answer = () => 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n';
      const closedBefore = upstream.closedByPeer;
      const answer = await exchange(
        port,
        'POST /bad-chunks-up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n',
        'zz\r\n',
      );
      assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
      await until(() => upstream.closedByPeer > closedBefore);
    },
  );

  exact(
    `${entry}: an upstream that answers before the request body is all sent never gets that connection again`,
    async () => {
      upstream.answer = () => 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n';
      upstream.received.length = 0;
      const early = await exchange(
        port,
        'POST /too-big HTTP/1.1\r\nHost: t\r\nX-Answer-Early: 1\r\nContent-Length: 10\r\n\r\nhello',
      );
      assert.match(early, /^HTTP\/1\.1 413 Payload Too Large\r\n/);
      assert.match(
        early,
        'Connection: close',
        'the client connection closes: the rest of its body would look like a request',
      );
      // The upstream still waits for 5 body bytes on that connection: a request sent there would be eaten as body.
      const after = await exchange(port, 'GET /after-early HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
      assert.match(after, /^HTTP\/1\.1 200 OK\r\n/);
      assert.ok(upstream.received.some((r) => r.startsWith('GET /after-early HTTP/1.1\r\n')));
    },
  );

  s(
    `${entry}: a client that half-closes in the middle of its body: 400, and the upstream connection is closed`,
    async () => {
      upstream.answer = () => 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n';
      const closedBefore = upstream.closedByPeer;
      const answer = await send(port, ['POST /cut HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello'], true);
      assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
      await until(() => upstream.closedByPeer > closedBefore);
    },
  );

  exact(
    `${entry}: response headers, byte for byte: hop-by-hop dropped, chunked body and trailers passed through as the upstream framed them`,
    async () => {
      upstream.answer = () =>
        'HTTP/1.1 200 Whatever\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=9\r\nX-Kept: 1\r\n' +
        'Trailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n';
      const answer = await exchange(port, 'GET /chunked HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
      assert.is(
        answer,
        'HTTP/1.1 200 OK\r\nX-Kept: 1\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n',
      );
    },
  );

  exact(`${entry}: HEAD, 204 and 304 carry no body, and the connection goes on to the next request`, async () => {
    upstream.answer = (request) =>
      request.startsWith('HEAD')
        ? 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'
        : request.startsWith('GET /204')
          ? 'HTTP/1.1 204 No Content\r\n\r\n'
          : request.startsWith('GET /304')
            ? 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n'
            : 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nend';
    const answer = await exchange(
      port,
      'HEAD /h HTTP/1.1\r\nHost: t\r\n\r\nGET /204 HTTP/1.1\r\nHost: t\r\n\r\nGET /304 HTTP/1.1\r\nHost: t\r\n\r\nGET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n',
    );
    assert.is(
      answer,
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n' +
        'HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n' +
        'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nConnection: keep-alive\r\n\r\n' +
        'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nend',
    );
  });

  exact(`${entry}: an interim 103 from the upstream is not passed on; the final response is`, async () => {
    upstream.answer = () =>
      'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    const answer = await exchange(port, 'GET /hints HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    assert.is(answer, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
  });

  s(
    `${entry}: Expect: 100-continue: the client gets 100 Continue, then the body goes up, the upstream is not asked to expect`,
    async () => {
      upstream.answer = () => 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n';
      upstream.received.length = 0;
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port });
        let received = '';
        socket.setEncoding('latin1');
        socket.on('error', reject);
        socket.on('data', (chunk: string) => {
          received += chunk;
          if (received === 'HTTP/1.1 100 Continue\r\n\r\n') socket.write('hello');
        });
        socket.on('close', () => resolve(received));
        socket.setTimeout(5_000, () => socket.destroy());
        socket.write(
          'POST /expect HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n',
        );
      });
      assert.match(answer, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
      assert.ok(upstream.received[0]!.endsWith('\r\n\r\nhello'));
      assert.not.match(upstream.received[0]!.toLowerCase(), 'expect:');
    },
  );

  s(
    `${entry}: invalid upstream framing (two Content-Lengths): 502, and that upstream connection is closed`,
    async () => {
      upstream.answer = () => 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!';
      const closedBefore = upstream.closedByPeer;
      const answer = await exchange(port, 'GET /bad-framing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
      assert.match(answer, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
      await until(() => upstream.closedByPeer > closedBefore);
      const logged = await sluice.waitForLog(
        (l) => l['event'] === 'upstream.failed' && l['code'] === 'INVALID_RESPONSE',
      );
      assert.match(String(logged['reason']), 'duplicate content-length');
    },
  );

  exact(
    `${entry}: an invalid chunked body after the head went out: the client connection is closed, the body never completes`,
    async () => {
      upstream.answer = () => 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n';
      const answer = await exchange(port, 'GET /bad-chunks HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
      assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
      assert.not.match(answer, '0\r\n\r\n', 'no last chunk: the client sees the body cut short');
    },
  );

  s(`${entry}: pipelined requests are answered in order on one connection`, async () => {
    upstream.answer = (request) => {
      const path = request.split(' ')[1]!;
      return `HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`;
    };
    const answer = await exchange(
      port,
      'GET /one HTTP/1.1\r\nHost: t\r\n\r\nGET /two HTTP/1.1\r\nHost: t\r\n\r\nGET /three HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n',
    );
    const bodies = answer
      .split('\r\n\r\n')
      .slice(1)
      .map((part) => part.split('HTTP/1.1')[0]);
    assert.equal(bodies, ['/one', '/two', '/three']);
  });

  s(`${entry}: a head that comes in two reads is whole, though other clients were read in between`, async () => {
    // Client sockets read into one buffer shared by the thread: the first part must have been copied out.
    upstream.answer = (request) => {
      const path = request.split(' ')[1]!;
      return `HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`;
    };
    const first = connect({ host: '127.0.0.1', port });
    let received = '';
    first.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
    const closed = new Promise((resolve) => first.on('close', resolve));
    first.write('GET /in-two-reads HTTP/1.1\r\nHo');
    // Another client's whole exchange: its head, read into the same buffer, is longer than the part above.
    const other = await exchange(
      port,
      `GET /${'o'.repeat(200)} HTTP/1.1\r\nHost: other\r\nX-Filler: ${'f'.repeat(200)}\r\nConnection: close\r\n\r\n`,
    );
    assert.ok(other.endsWith(`/${'o'.repeat(200)}`), other);
    first.end('st: t\r\nConnection: close\r\n\r\n');
    await closed;
    assert.ok(received.startsWith('HTTP/1.1 200 OK\r\n'), received);
    assert.ok(received.endsWith('\r\n\r\n/in-two-reads'), received);
  });

  s.run();
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(condition());
}
