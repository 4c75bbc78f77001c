/**
 * Nothing a client, a route or a hook does can change how a body is framed
 * on its way up or down: what the upstream reads as one request is one
 * request. A raw upstream records every request line it parses.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../src/config/load.ts';
import { until } from '../support/http.ts';
import { killAll, type SluiceProcess, startRouting, stopSluice } from '../support/sluice-process.ts';
import { HEALTH_PATH } from '../support/upstream.ts';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';

const hostileHooks = fileURLToPath(new URL('../fixtures/hostile-hooks.ts', import.meta.url));
const unframingHooks = fileURLToPath(new URL('../fixtures/unframing-hooks.ts', import.meta.url));

/** An upstream that frames requests itself (Content-Length only) and records each request line; answers 200 'ok'. */
async function recordingUpstream(): Promise<{ server: Server; port: number; lines: string[] }> {
  const lines: string[] = [];
  const server = createServer((socket: Socket) => {
    let buffer = Buffer.alloc(0);
    socket.on('error', () => {
      /* the test asserts on what the socket received; a reset is one such outcome */
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buffer.toString('latin1', 0, end);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < end + 4 + length) return;
        const line = head.split('\r\n', 1)[0]!;
        if (!line.includes(HEALTH_PATH)) lines.push(line);
        if (line.includes('/reset')) return void socket.destroy();
        buffer = buffer.subarray(end + 4 + length);
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, lines };
}

/** Raw bytes to the proxy; resolves with everything it sent back before closing (or the bound). */
function exchange(port: number, bytes: string, keepOpenMs = 600): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => {
      /* the test asserts on what the socket received; a reset is one such outcome */
    });
    const bound = setTimeout(() => socket.destroy(), keepOpenMs);
    socket.on('close', () => {
      clearTimeout(bound);
      resolve(received);
    });
    socket.write(bytes);
  });
}

interface Ctx {
  upstream?: Awaited<ReturnType<typeof recordingUpstream>>;
  sluice?: SluiceProcess;
  port?: number;
  hookLog?: string;
}

/** A suite against one sluice; `hooks`: a request-hooks module for it. */
function framingSuite(name: string, hooks?: string) {
  const s = suite<Ctx>(name);
  s.before(async (ctx) => {
    ctx.upstream = await recordingUpstream();
    ctx.hookLog = join(tempDir(), 'hooks.jsonl');
    const config = testConfig([{ port: ctx.upstream.port }], { workers: 1, ...(hooks && { request_hooks: hooks }) });
    ({ sluice: ctx.sluice, port: ctx.port } = await startRouting(['-c', writeConfig(config)], 1, 1, {
      env: { SLUICE_TEST_HOOK_LOG: ctx.hookLog },
    }));
  });
  s.after(async (ctx) => {
    await stopSluice(ctx.sluice);
    ctx.upstream?.server.close();
    killAll();
  });
  return s;
}

// Without hooks: the rules alone (a hook that edits headers re-frames them on its own path).
const smuggling = framingSuite('framing cannot be changed by a client');

smuggling('Connection: content-length does not drop the length of a body still forwarded', async (ctx) => {
  const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n';
  await exchange(
    ctx.port!,
    `POST /first HTTP/1.1\r\nHost: a\r\nConnection: content-length\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
  );
  assert.ok(ctx.upstream!.lines.includes('POST /first HTTP/1.1'));
  assert.not.ok(
    ctx.upstream!.lines.some((l) => l.includes('/smuggled')),
    ctx.upstream!.lines.join(' | '),
  );
});

smuggling("HEAD gets the proxy's own answer without a body, and the connection stays usable", async (ctx) => {
  // The backend resets /reset: the fast path answers 502 itself, and the pipelined GET must follow it cleanly.
  const answer = await exchange(
    ctx.port!,
    'HEAD /reset HTTP/1.1\r\nHost: a\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  );
  const responses = answer.split(/(?=HTTP\/1\.1 )/);
  assert.is(responses.length, 2, JSON.stringify(answer));
  assert.match(responses[0]!, /^HTTP\/1\.1 502 [^]*content-length: 12\r\n[^]*\r\n\r\n$/);
  assert.match(responses[1]!, /^HTTP\/1\.1 200 /);
});

smuggling.run();

const unframing = framingSuite('framing cannot be changed by an upstreamRequestFilter', unframingHooks);

unframing('a hook that deletes Content-Length: the upstream still gets the body framed', async (ctx) => {
  const smuggled = 'GET /smuggled-by-hook HTTP/1.1\r\nHost: a\r\n\r\n';
  const answer = await exchange(
    ctx.port!,
    `POST /unframed HTTP/1.1\r\nHost: a\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
  );
  assert.match(answer, /^HTTP\/1\.1 200 /);
  assert.not.ok(
    ctx.upstream!.lines.some((l) => l.includes('/smuggled-by-hook')),
    ctx.upstream!.lines.join(' | '),
  );
});

unframing.run();

// Only onRequestStart and requestFilter: nothing else reads the request's headers during its read.
const hostile = framingSuite('hooks that misbehave', hostileHooks);

hostile('a hook answer with CR/LF in a header value is refused (500), nothing injected', async (ctx) => {
  const answer = await exchange(ctx.port!, 'GET /inject HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.match(answer, /^HTTP\/1\.1 500 /);
  assert.not.match(answer, /set-cookie/i);
});

hostile(
  'a hook answer whose body is no string, or whose status is none, is a 500 and the thread lives on',
  async (ctx) => {
    assert.match(
      await exchange(ctx.port!, 'GET /not-a-string HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'),
      /^HTTP\/1\.1 500 /,
    );
    assert.match(
      await exchange(ctx.port!, 'GET /bad-status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'),
      /^HTTP\/1\.1 500 /,
    );
    assert.match(
      await exchange(ctx.port!, 'GET /fine HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'),
      /^HTTP\/1\.1 200 /,
    );
    assert.not.ok(
      ctx.sluice!.lines.some((l) => l['event'] === 'actor.failed' && l['actor'] === 'listener'),
      'no thread died',
    );
  },
);

hostile('a hook that reads headers after the read ended sees its own request, not the next one', async (ctx) => {
  await Promise.all(
    ['alice', 'bobby', 'carol', 'dave1'].map((who) =>
      exchange(
        ctx.port!,
        `GET /later/${who} HTTP/1.1\r\nHost: a\r\nX-Secret: ${who}-token\r\nConnection: close\r\n\r\n`,
      ),
    ),
  );
  const seen = await until(
    () =>
      (existsSync(ctx.hookLog!) ? readFileSync(ctx.hookLog!, 'utf8') : '')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { path: string; secret: string }),
    (all) => all.length >= 4,
  );
  for (const { path, secret } of seen) assert.is(secret, `${path.slice('/later/'.length)}-token`, path);
});

hostile.run();

const config = suite('framing headers in the config');

config('a route may not set or remove framing or connection headers, nor carry the request id in one', () => {
  for (const name of ['Content-Length', 'transfer-encoding', 'Connection', 'upgrade']) {
    const route = (edits: object) => ({ routes: [{ match: {}, upstream: 'default', ...edits }] });
    assert.throws(
      () => parseConfig(route({ request_headers: { remove: [name] } }), 'x.json'),
      /framing and connection headers/,
    );
    assert.throws(
      () => parseConfig(route({ response_headers: { set: { [name]: '1' } } }), 'x.json'),
      /framing and connection headers/,
    );
  }
  assert.throws(
    () =>
      parseConfig({ routes: [{ match: {}, respond: { status: 200, headers: { 'content-length': '0' } } }] }, 'x.json'),
    /framing/,
  );
  assert.throws(() => parseConfig({ proxy: { request_id_header: 'content-length' } }, 'x.json'), /request id/);
});

config.run();
