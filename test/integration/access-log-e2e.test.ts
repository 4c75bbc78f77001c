/**
 * The access log end to end, black-box: a real sluice process on loopback,
 * real upstreams, and the lines read back from the file (or stdout) it
 * writes. The per-request facts are checked in every engine: the fast path,
 * the Node path with request hooks loaded, and `proxy.fast_path: false`.
 * Lines are batched (flushed every 100 ms), so every read polls, bounded.
 */
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { type ClientRequest, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Answer, get, rawRequest, until } from '../support/http.ts';
import {
  exitWithin,
  killAll,
  type LogLine,
  type SluiceProcess,
  startRouting,
  stopSluice,
} from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';

const KEYS = [
  'time',
  'pid',
  'thread',
  'remote_addr',
  'method',
  'path',
  'protocol',
  'host',
  'status',
  'bytes_sent',
  'duration_ms',
  'route',
  'upstream',
  'backend',
  'upstream_status',
  'attempts',
  'error',
  'request_id',
  'user_agent',
  'referer',
];
const SORTED_KEYS = [...KEYS].sort();
const ISO_MS_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const emptyHooks = fileURLToPath(new URL('../fixtures/empty-hooks.ts', import.meta.url));

type Line = Record<string, unknown>;

/** Every whole line of the file, parsed; a line that does not parse is kept as `{ unparsed }`. */
function readLines(file: string): Line[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  // A batch being written right now may show only its first part: the text after the last newline is not a line yet.
  return text
    .split('\n')
    .slice(0, -1)
    .map((raw) => {
      try {
        return JSON.parse(raw) as Line;
      } catch {
        return { unparsed: raw };
      }
    });
}

/** The one line that matches, once it has been flushed (bounded wait). */
async function lineFor(file: string, match: (line: Line) => boolean, withinMs = 5_000): Promise<Line> {
  const lines = await until(
    () => readLines(file),
    (all) => all.some(match),
    Math.ceil(withinMs / 50),
    50,
  );
  const found = lines.filter(match);
  assert.is(found.length, 1, `exactly one line matches; got ${JSON.stringify(found)}`);
  return found[0]!;
}

const byId = (id: string) => (line: Line) => line['request_id'] === id;
const header = (answer: Answer, name: string) => answer.headers[name] as string | undefined;
let serial = 0;
const unique = (prefix: string) => `${prefix}-${process.pid}-${++serial}`;

/** Asserts the keys are exactly the contract's, and the per-line facts any line has. */
function assertShape(line: Line, sluicePid: number): void {
  assert.equal(Object.keys(line).sort(), SORTED_KEYS, 'exactly the access-log keys');
  assert.match(String(line['time']), ISO_MS_UTC);
  assert.is(line['pid'], sluicePid);
  assert.ok(Number.isInteger(line['thread']), `thread: ${JSON.stringify(line['thread'])}`);
  assert.is(line['remote_addr'], '127.0.0.1');
  assert.is(line['protocol'], 'HTTP/1.1');
  assert.is(typeof line['duration_ms'], 'number');
  assert.ok((line['duration_ms'] as number) >= 0, `duration_ms: ${String(line['duration_ms'])}`);
}

// ---------------------------------------------------------------------------
// The per-request facts, in each engine.

interface EngineContext {
  a?: TestUpstream;
  broken?: TestUpstream;
  slow?: TestUpstream;
  flaky?: TestUpstream;
  sluice?: SluiceProcess;
  port?: number;
  file?: string;
  configFile?: string;
  config?: unknown;
}

const UPSTREAM_TIMEOUT_MS = 1_000;

const engines: [string, Record<string, unknown>][] = [
  ['fast path (default)', {}],
  ['request hooks (empty onRequestStart)', { request_hooks: emptyHooks }],
  ['fast_path: false', { fast_path: false }],
];

for (const [engine, proxyOptions] of engines) {
  const s = suite<EngineContext>(`access log, ${engine}`);

  s.before(async (ctx) => {
    ctx.a = await startUpstream('a');
    ctx.broken = await startUpstream('broken');
    ctx.broken.mode = 'reset';
    ctx.slow = await startUpstream('slow');
    ctx.slow.holdPath = '/slow/hold';
    ctx.flaky = await startUpstream('flaky');
    const dir = tempDir('sluice-access-e2e-');
    ctx.file = join(dir, 'access.log');
    const backend = (port: number) => ({ address: '127.0.0.1', port });
    const config = {
      ...testConfig([{ port: ctx.a.port }], { workers: 1, upstream_timeout_ms: UPSTREAM_TIMEOUT_MS, ...proxyOptions }),
      upstreams: {
        broken: { backends: [backend(ctx.broken.port)] },
        slow: { backends: [backend(ctx.slow.port)] },
        flaky: { backends: [backend(ctx.flaky.port)] },
      },
      routes: [
        { name: 'only', match: { path_prefix: '/ok' }, upstream: 'default' },
        { match: { path_prefix: '/unnamed' }, upstream: 'default' },
        { name: 'canned', match: { path_prefix: '/canned' }, respond: { status: 203, body: 'canned answer\n' } },
        { name: 'broken', match: { path_prefix: '/broken' }, upstream: 'broken' },
        { name: 'slow', match: { path_prefix: '/slow' }, upstream: 'slow' },
        { name: 'flaky', match: { path_prefix: '/flaky' }, upstream: 'flaky' },
      ],
      access_log: { file: ctx.file, format: 'json' },
    };
    ctx.config = config;
    ctx.configFile = writeConfig(config);
    ({ sluice: ctx.sluice, port: ctx.port } = await startRouting(['-c', ctx.configFile], 1, 4));
  });

  s.after(async (ctx) => {
    await stopSluice(ctx.sluice);
    ctx.slow?.release();
    for (const upstream of [ctx.a, ctx.broken, ctx.slow, ctx.flaky]) await upstream?.close();
    killAll();
  });

  s("a proxied GET: every key, with the request's and the upstream's facts", async (ctx) => {
    const id = unique('proxied');
    const before = Date.now();
    const answer = await get(ctx.port!, '/ok/x?a=1&b=%20c', {
      headers: {
        host: 'Access.Example:8443',
        'x-request-id': id,
        'user-agent': 'e2e-agent/1.0',
        referer: 'http://referer.example/page?x=1',
      },
    });
    const after = Date.now();
    assert.is(answer.status, 200);
    const line = await lineFor(ctx.file!, byId(id));
    assertShape(line, ctx.sluice!.pid);
    const time = Date.parse(String(line['time']));
    assert.ok(
      time >= before - 50 && time <= after + 50,
      `time ${String(line['time'])} within the request (${before}..${after})`,
    );
    assert.ok(
      (line['duration_ms'] as number) <= after - before + 50,
      `duration_ms ${String(line['duration_ms'])} within ${after - before} ms`,
    );
    assert.equal(
      { ...line, time: undefined, pid: undefined, thread: undefined, duration_ms: undefined },
      {
        time: undefined,
        pid: undefined,
        thread: undefined,
        duration_ms: undefined,
        remote_addr: '127.0.0.1',
        method: 'GET',
        path: '/ok/x?a=1&b=%20c',
        protocol: 'HTTP/1.1',
        host: 'Access.Example:8443',
        status: 200,
        bytes_sent: Buffer.byteLength(answer.body),
        route: 'only',
        upstream: 'default',
        backend: `127.0.0.1:${ctx.a!.port}`,
        upstream_status: 200,
        attempts: 1,
        error: null,
        request_id: id,
        user_agent: 'e2e-agent/1.0',
        referer: 'http://referer.example/page?x=1',
      },
    );
  });

  s('absent User-Agent, Referer and Host are null', async (ctx) => {
    const id = unique('absent');
    // HTTP/1.0 may leave Host out; Node's client sends no User-Agent or Referer of its own.
    const status = await rawRequest(ctx.port!, `GET /ok/absent HTTP/1.0\r\nX-Request-Id: ${id}\r\n\r\n`);
    assert.match(status, /^HTTP\/1\.[01] 200 /);
    const line = await lineFor(ctx.file!, byId(id));
    assert.is(line['user_agent'], null);
    assert.is(line['referer'], null);
    assert.is(line['host'], null);
  });

  s('a route without a name is logged by its index, as a string', async (ctx) => {
    const id = unique('unnamed');
    assert.is((await get(ctx.port!, '/unnamed/x', { headers: { 'x-request-id': id } })).status, 200);
    const line = await lineFor(ctx.file!, byId(id));
    assert.is(line['route'], '1');
    assert.is(line['upstream'], 'default');
  });

  s('404 no_route with routes configured: route, upstream, backend null, attempts 0', async (ctx) => {
    const answer = await get(ctx.port!, '/nope?q=2', { headers: { 'user-agent': 'e2e-404' } });
    assert.is(answer.status, 404);
    const id = header(answer, 'x-request-id');
    assert.ok(id, 'the own answer carries a request id');
    const line = await lineFor(ctx.file!, (l) => l['path'] === '/nope?q=2' && l['request_id'] === id);
    assertShape(line, ctx.sluice!.pid);
    assert.is(line['method'], 'GET');
    assert.is(line['status'], 404);
    assert.is(line['bytes_sent'], Buffer.byteLength(answer.body));
    assert.is(line['route'], null);
    assert.is(line['upstream'], null);
    assert.is(line['backend'], null);
    assert.is(line['upstream_status'], null);
    assert.is(line['attempts'], 0);
    assert.match(String(line['error']), /^no_route$/i);
    assert.is(line['user_agent'], 'e2e-404');
  });

  s(
    'a request without an id gets a new one: the upstream sees it, the response returns it, the log has it',
    async (ctx) => {
      const paths = ['/ok/gen-1', '/ok/gen-2'].map((p) => `${p}-${unique('g')}`);
      const ids: string[] = [];
      for (const path of paths) {
        const answer = await get(ctx.port!, path);
        assert.is(answer.status, 200);
        const returned = header(answer, 'x-request-id');
        assert.ok(typeof returned === 'string' && returned.length > 0, `returned id: ${JSON.stringify(returned)}`);
        const seen = ctx.a!.received.find((r) => r.url === path);
        assert.ok(seen, 'forwarded');
        assert.is(seen.headers['x-request-id'], returned, 'the upstream saw the same id');
        const line = await lineFor(ctx.file!, (l) => l['path'] === path);
        assert.is(line['request_id'], returned);
        ids.push(returned);
      }
      assert.is.not(ids[0], ids[1], 'each request gets its own id');
    },
  );

  s('a client-sent id is kept: the same value goes up, comes back, and is logged', async (ctx) => {
    const id = unique('client-sent');
    const path = `/ok/${id}`;
    const answer = await get(ctx.port!, path, { headers: { 'x-request-id': id } });
    assert.is(answer.status, 200);
    assert.is(header(answer, 'x-request-id'), id);
    assert.is(ctx.a!.received.find((r) => r.url === path)?.headers['x-request-id'], id);
    assert.is((await lineFor(ctx.file!, (l) => l['path'] === path))['request_id'], id);
  });

  s('a respond route: its status and body bytes, route named, no upstream, attempts 0, no error', async (ctx) => {
    const id = unique('canned');
    const answer = await get(ctx.port!, '/canned/x', { headers: { 'x-request-id': id } });
    assert.is(answer.status, 203);
    assert.is(header(answer, 'x-request-id'), id);
    const line = await lineFor(ctx.file!, byId(id));
    assertShape(line, ctx.sluice!.pid);
    assert.is(line['status'], 203);
    assert.is(line['bytes_sent'], Buffer.byteLength(answer.body));
    assert.is(line['route'], 'canned');
    assert.is(line['upstream'], null);
    assert.is(line['backend'], null);
    assert.is(line['upstream_status'], null);
    assert.is(line['attempts'], 0);
    assert.is(line['error'], null);
  });

  s('/health, /ready and /live get a line each, attempts 0', async (ctx) => {
    for (const path of ['/health', '/ready', '/live']) {
      const id = unique(path.slice(1));
      const answer = await get(ctx.port!, path, { headers: { 'x-request-id': id } });
      const line = await lineFor(ctx.file!, byId(id));
      assertShape(line, ctx.sluice!.pid);
      assert.is(line['path'], path);
      assert.is(line['status'], answer.status, path);
      assert.is(line['bytes_sent'], Buffer.byteLength(answer.body), path);
      assert.is(line['attempts'], 0, path);
      assert.is(line['backend'], null, path);
      assert.is(line['upstream_status'], null, path);
    }
  });

  s('502 from an upstream that resets: logged with its backend, an error code and no upstream status', async (ctx) => {
    const id = unique('broken');
    const answer = await get(ctx.port!, '/broken/x', { headers: { 'x-request-id': id } });
    assert.is(answer.status, 502);
    assert.is(header(answer, 'x-request-id'), id);
    const line = await lineFor(ctx.file!, byId(id));
    assertShape(line, ctx.sluice!.pid);
    assert.is(line['status'], 502);
    assert.is(line['bytes_sent'], Buffer.byteLength(answer.body));
    assert.is(line['route'], 'broken');
    assert.is(line['upstream'], 'broken');
    assert.is(line['backend'], `127.0.0.1:${ctx.broken!.port}`);
    assert.is(line['upstream_status'], null);
    assert.ok((line['attempts'] as number) >= 1, `attempts: ${String(line['attempts'])}`);
    assert.ok(typeof line['error'] === 'string' && line['error'].length > 0, `error: ${JSON.stringify(line['error'])}`);
  });

  s('504 when the upstream does not answer in upstream_timeout_ms: logged with the wait it took', async (ctx) => {
    const id = unique('timeout');
    const answer = await get(ctx.port!, '/slow/hold', { headers: { 'x-request-id': id } });
    ctx.slow!.release();
    assert.is(answer.status, 504);
    const line = await lineFor(ctx.file!, byId(id));
    assertShape(line, ctx.sluice!.pid);
    assert.is(line['status'], 504);
    assert.is(line['bytes_sent'], Buffer.byteLength(answer.body));
    assert.is(line['route'], 'slow');
    assert.is(line['upstream'], 'slow');
    assert.is(line['backend'], `127.0.0.1:${ctx.slow!.port}`);
    assert.is(line['upstream_status'], null);
    assert.ok((line['attempts'] as number) >= 1, `attempts: ${String(line['attempts'])}`);
    assert.ok(typeof line['error'] === 'string' && line['error'].length > 0, `error: ${JSON.stringify(line['error'])}`);
    assert.ok(
      (line['duration_ms'] as number) >= UPSTREAM_TIMEOUT_MS * 0.9,
      `duration_ms: ${String(line['duration_ms'])}`,
    );
  });

  /** A request to the held path; `close` ends the client's connection once the upstream holds it. */
  async function abortWhileHeld(ctx: EngineContext, id: string, close: (req: ClientRequest) => void): Promise<Line> {
    const held = ctx.slow!.nextHeld();
    const req = httpRequest({
      host: '127.0.0.1',
      port: ctx.port!,
      path: '/slow/hold',
      headers: { 'x-request-id': id },
      agent: false,
    });
    const responded = new Promise<boolean>((resolve) => {
      req.on('response', () => resolve(true));
      req.on('error', () => resolve(false));
      req.on('close', () => resolve(false));
    });
    req.end();
    await held;
    close(req);
    assert.is(await responded, false, 'no response head reached the client');
    try {
      // Well before upstream_timeout_ms, so that a 504 cannot stand in for the abort.
      return await lineFor(ctx.file!, byId(id), UPSTREAM_TIMEOUT_MS / 2);
    } catch {
      const late = await lineFor(ctx.file!, byId(id)).catch(() => undefined);
      const message = `no line within ${UPSTREAM_TIMEOUT_MS / 2} ms of the close; the line that came later: ${JSON.stringify(late)}`;
      assert.unreachable(message);
      throw new Error(message);
    } finally {
      ctx.slow!.release();
    }
  }

  /** The proxy's own 502/503 for the `flaky` route: no backend tried, a failure code. */
  function assertNoBackendLine(ctx: EngineContext, line: Line, status: number, answer: Answer): void {
    assertShape(line, ctx.sluice!.pid);
    assert.is(line['status'], status);
    assert.is(line['bytes_sent'], Buffer.byteLength(answer.body));
    assert.is(line['route'], 'flaky');
    assert.is(line['upstream'], 'flaky');
    assert.is(line['backend'], null);
    assert.is(line['upstream_status'], null);
    assert.is(line['attempts'], 0);
    assert.ok(typeof line['error'] === 'string' && line['error'].length > 0, `error: ${JSON.stringify(line['error'])}`);
  }

  function assertAborted(ctx: EngineContext, line: Line): void {
    assertShape(line, ctx.sluice!.pid);
    assert.is(line['status'], 499);
    assert.is(line['path'], '/slow/hold');
    assert.is(line['bytes_sent'], 0);
    assert.is(line['route'], 'slow');
    assert.is(line['upstream'], 'slow');
    assert.is(line['backend'], `127.0.0.1:${ctx.slow!.port}`);
    assert.is(line['upstream_status'], null);
  }

  // A FIN is a half-close, not an abort (decision 62): `nc -N` and some load balancers' checks send their
  // request and then their FIN, and get their answer, as with nginx's proxy_ignore_client_abort.
  s(
    'a client that half-closes (FIN) while the upstream delays is still answered, and logged with that status',
    async (ctx) => {
      const id = unique('half-close');
      const held = ctx.slow!.nextHeld();
      const socket = connect({ host: '127.0.0.1', port: ctx.port! });
      let received = '';
      socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.on('error', () => {
        /* the test asserts on what the socket received; a reset is one such outcome */
      });
      socket.end(`GET /slow/hold HTTP/1.1\r\nHost: t\r\nx-request-id: ${id}\r\n\r\n`);
      await held;
      ctx.slow!.release();
      await closed;
      assert.match(received, /^HTTP\/1\.1 200 /);
      const line = await lineFor(ctx.file!, byId(id));
      assertShape(line, ctx.sluice!.pid);
      assert.is(line['status'], 200);
      assert.is(line['upstream_status'], 200);
      assert.is(line['error'], null);
    },
  );

  s('499 for a client that resets its connection (RST) while the upstream delays the response head', async (ctx) => {
    assertAborted(ctx, await abortWhileHeld(ctx, unique('abort-reset'), (req) => req.socket!.resetAndDestroy()));
  });

  s("502 when the route's upstream has no healthy backend: backend null, attempts 0, an error code", async (ctx) => {
    ctx.flaky!.healthStatus = 500;
    try {
      // Until the health checker has seen it and the listener has its snapshot.
      let id = '';
      const answer = await until(
        async () => {
          id = unique('unhealthy');
          return get(ctx.port!, '/flaky/x', { headers: { 'x-request-id': id } });
        },
        (a) => a.status === 502,
      );
      assertNoBackendLine(ctx, await lineFor(ctx.file!, byId(id)), 502, answer);
    } finally {
      ctx.flaky!.healthStatus = 200;
      await until(
        () => get(ctx.port!, '/flaky/back'),
        (a) => a.status === 200,
      );
    }
  });

  s(
    "503 when the route's upstream has no backend at all (reloaded without them): attempts 0, an error code",
    async (ctx) => {
      const reload = async (config: unknown) => {
        writeFileSync(ctx.configFile!, JSON.stringify(config));
        const from = ctx.sluice!.lines.length;
        ctx.sluice!.kill('SIGHUP');
        await ctx
          .sluice!.waitForLog((l) => l['event'] === 'RELOAD' || l['event'] === 'config.reload_failed', 10_000, from)
          .then((l) => assert.is(l['event'], 'RELOAD', JSON.stringify(l)));
      };
      const config = ctx.config as { upstreams: Record<string, unknown> };
      await reload({ ...config, upstreams: { ...config.upstreams, flaky: { backends: [] } } });
      try {
        let id = '';
        const answer = await until(
          async () => {
            id = unique('no-backends');
            return get(ctx.port!, '/flaky/x', { headers: { 'x-request-id': id } });
          },
          (a) => a.status === 503,
        );
        assertNoBackendLine(ctx, await lineFor(ctx.file!, byId(id)), 503, answer);
      } finally {
        await reload(ctx.config);
        await until(
          () => get(ctx.port!, '/flaky/back'),
          (a) => a.status === 200,
        );
      }
    },
  );

  s('every line in the file parses and has exactly the access keys', async (ctx) => {
    // The last lines may still be batched: wait for the one of a final request.
    const id = unique('last');
    await get(ctx.port!, '/ok/last', { headers: { 'x-request-id': id } });
    const lines = await until(
      () => readLines(ctx.file!),
      (all) => all.some(byId(id)),
    );
    assert.ok(lines.length > 10, `${lines.length} lines`);
    for (const line of lines) assert.equal(Object.keys(line).sort(), SORTED_KEYS, JSON.stringify(line));
  });

  s.run();
}

/** `count` requests, `concurrency` at a time, each on its own connection. */
async function many(count: number, concurrency: number, send: (i: number) => Promise<Answer>): Promise<Answer[]> {
  const answers = new Array<Answer>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        answers[i] = await send(i);
      }
    }),
  );
  return answers;
}

// ---------------------------------------------------------------------------
// One file, two listener threads: a relative path, whole lines, SIGUSR1.

const shared = suite<{ a?: TestUpstream; sluice?: SluiceProcess; port?: number; file?: string; cwd?: string }>(
  'access log file, two listener threads',
);

shared.before(async (ctx) => {
  ctx.a = await startUpstream('a');
  const configFile = writeConfig({
    ...testConfig([{ port: ctx.a.port }], { workers: 2 }),
    access_log: { file: 'access.log' },
  });
  ctx.file = join(configFile, '..', 'access.log');
  // Started in another folder: a path resolved against the working directory would land there instead.
  ctx.cwd = tempDir('sluice-access-cwd-');
  ({ sluice: ctx.sluice, port: ctx.port } = await startRouting(['-c', configFile], 2, 1, { cwd: ctx.cwd }));
});

shared.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  await ctx.a?.close();
  killAll();
});

shared("a relative path resolves against the config file's folder; the format defaults to json", async (ctx) => {
  const id = unique('relative');
  assert.is((await get(ctx.port!, '/relative', { headers: { 'x-request-id': id } })).status, 200);
  const line = await lineFor(ctx.file!, byId(id));
  assertShape(line, ctx.sluice!.pid);
  assert.is(line['path'], '/relative');
  assert.equal(readdirSync(ctx.cwd!), [], 'nothing written in the working directory');
});

shared('lines from both threads never interleave: every line parses, one per request', async (ctx) => {
  const count = 600;
  const prefix = unique('interleave');
  const agent = 'u'.repeat(3_000);
  const answers = await many(count, 24, (i) =>
    get(ctx.port!, `/interleave/${i}`, { headers: { 'x-request-id': `${prefix}-${i}`, 'user-agent': agent } }),
  );
  assert.ok(answers.every((a) => a.status === 200));
  const mine = (all: Line[]) => all.filter((l) => String(l['request_id']).startsWith(`${prefix}-`));
  await until(
    () => readLines(ctx.file!),
    (all) => mine(all).length >= count,
    200,
    50,
  );
  const lines = readLines(ctx.file!);
  assert.equal(
    lines.filter((l) => 'unparsed' in l),
    [],
    'every line parses',
  );
  const ours = mine(lines);
  assert.is(ours.length, count);
  assert.is(new Set(ours.map((l) => l['request_id'])).size, count, 'each request once');
  for (const line of ours) {
    assert.equal(Object.keys(line).sort(), SORTED_KEYS);
    assert.is(line['user_agent'], agent);
    assert.is(line['path'], `/interleave/${String(line['request_id']).slice(prefix.length + 1)}`);
  }
  assert.is(new Set(ours.map((l) => l['thread'])).size, 2, 'both threads wrote lines');
});

shared(
  'SIGUSR1 after a rename: earlier lines stay in the moved file, new ones go to a new file at the path',
  async (ctx) => {
    const file = ctx.file!;
    const moved = `${file}.1`;
    const prefix = unique('rotate');
    const send = (phase: string, i: number) =>
      get(ctx.port!, `/rotate/${phase}/${i}`, { headers: { 'x-request-id': `${prefix}-${phase}-${i}` } });
    const ids = (lines: Line[], phase: string) =>
      lines.map((l) => String(l['request_id'])).filter((id) => id.startsWith(`${prefix}-${phase}-`));

    for (let i = 0; i < 10; i++) await send('before', i);
    await until(
      () => readLines(file),
      (all) => ids(all, 'before').length === 10,
    );
    renameSync(file, moved);
    const logIndex = ctx.sluice!.lines.length;
    ctx.sluice!.kill('SIGUSR1');
    await ctx.sluice!.waitForLog((l: LogLine) => l['event'] === 'logs.reopened', 5_000, logIndex);

    // Each thread reopens on its own message: send until both threads have written to the new file.
    let during = 0;
    await until(
      async () => {
        await send('during', during++);
        return new Set(readLines(file).map((l) => l['thread'])).size;
      },
      (threads) => threads >= 2,
      300,
      20,
    );

    for (let i = 0; i < 20; i++) await send('after', i);
    await until(
      () => readLines(file),
      (all) => ids(all, 'after').length === 20,
    );
    // Give every batch its flush before the final counts.
    const last = `${prefix}-final`;
    await get(ctx.port!, '/rotate/final', { headers: { 'x-request-id': last } });
    await lineFor(file, byId(last));

    const oldLines = readLines(moved);
    const newLines = readLines(file);
    assert.equal(
      [...oldLines, ...newLines].filter((l) => 'unparsed' in l),
      [],
      'every line parses',
    );
    assert.is(ids(oldLines, 'before').length, 10, 'the lines before the rename are in the moved file');
    assert.is(ids(newLines, 'before').length, 0);
    assert.is(ids(oldLines, 'after').length, 0, 'nothing after the reopen went to the moved file');
    assert.is(ids(newLines, 'after').length, 20);
    const duringIds = [...ids(oldLines, 'during'), ...ids(newLines, 'during')];
    assert.is(duringIds.length, during, 'each request in between is in one file or the other');
    assert.is(new Set(duringIds).size, during);
  },
);

shared.run();

// ---------------------------------------------------------------------------
// No line lost at a stop, in each engine.

for (const [engine, proxyOptions] of engines) {
  const stop = suite(`access log at a stop, ${engine}`);

  stop('N requests, then SIGTERM at once: after the exit the file has N lines', async () => {
    const a = await startUpstream('a');
    const file = join(tempDir('sluice-access-stop-'), 'access.log');
    let sluice: SluiceProcess | undefined;
    try {
      const config = {
        ...testConfig([{ port: a.port }], { workers: 2, ...proxyOptions }),
        access_log: { file, format: 'json' },
      };
      let port: number;
      ({ sluice, port } = await startRouting(['-c', writeConfig(config)], 2, 1));
      const count = 60;
      const prefix = unique('stop');
      const answers = await many(count, 12, (i) =>
        get(port, `/stop/${i}`, { headers: { 'x-request-id': `${prefix}-${i}` } }),
      );
      sluice.kill('SIGTERM');
      const onDiskAtStop = readLines(file).length;
      assert.ok(answers.every((r) => r.status === 200));
      await exitWithin(sluice);
      const lines = readLines(file);
      assert.equal(
        lines.filter((l) => 'unparsed' in l),
        [],
        'every line parses',
      );
      assert.is(lines.length, count, `${onDiskAtStop} lines were on disk at the SIGTERM`);
      assert.equal(
        lines.map((l) => String(l['request_id'])).sort(),
        Array.from({ length: count }, (_, i) => `${prefix}-${i}`).sort(),
      );
    } finally {
      await stopSluice(sluice);
      await a.close();
      killAll();
    }
  });

  stop.run();
}

// ---------------------------------------------------------------------------
// Where the lines go, and the request id header's settings: one process each.

const outputs = suite<{ a?: TestUpstream }>('access log outputs and request ids');

outputs.before(async (ctx) => {
  ctx.a = await startUpstream('a');
});

outputs.after(async (ctx) => {
  await ctx.a?.close();
  killAll();
});

/** Runs `body` against a sluice started with `config`, then stops it. */
async function withSluice(
  config: unknown,
  body: (sluice: SluiceProcess, port: number) => Promise<void>,
  options: { cwd?: string } = {},
) {
  const { sluice, port } = await startRouting(
    ['-c', typeof config === 'string' ? config : writeConfig(config)],
    1,
    1,
    options,
  );
  try {
    await body(sluice, port);
  } finally {
    await stopSluice(sluice);
  }
}

const isAccessLine = (l: LogLine) => KEYS.every((key) => key in l);

outputs('file "-" writes the lines to stdout among the process\'s own log lines', async (ctx) => {
  const config = { ...testConfig([{ port: ctx.a!.port }], { workers: 1 }), access_log: { file: '-' } };
  await withSluice(config, async (sluice, port) => {
    const id = unique('stdout');
    assert.is((await get(port, '/to-stdout?x=1', { headers: { 'x-request-id': id } })).status, 200);
    const line = await sluice.waitForLog((l) => isAccessLine(l) && l['request_id'] === id, 5_000);
    assertShape(line, sluice.pid);
    assert.is(line['path'], '/to-stdout?x=1');
    assert.is(line['status'], 200);
    assert.ok(
      sluice.lines.some((l) => !isAccessLine(l) && l['event'] === 'listeners.listening'),
      "pino's lines are there too",
    );
    assert.not.ok(
      sluice.lines.some((l) => l['raw'] === true && String(l.msg).includes(id)),
      'the access line is whole',
    );
  });
});

outputs('off when access_log is absent: no file, no access line on stdout', async (ctx) => {
  const configFile = writeConfig(testConfig([{ port: ctx.a!.port }], { workers: 1 }));
  const cwd = tempDir('sluice-access-off-');
  let sluice: SluiceProcess | undefined;
  await withSluice(
    configFile,
    async (s, port) => {
      sluice = s;
      assert.is((await get(port, '/off')).status, 200);
    },
    { cwd },
  );
  assert.not.ok(sluice!.lines.some(isAccessLine), 'no access line on stdout');
  assert.not.ok(
    sluice!.lines.some((l) => l['raw'] === true && String(l.msg).includes('/off')),
    'no combined line either',
  );
  assert.equal(readdirSync(join(configFile, '..')), ['config.json']);
  assert.equal(readdirSync(cwd), []);
});

outputs('request_id_header null: no id added up or back, request_id null', async (ctx) => {
  const file = join(tempDir('sluice-access-noid-'), 'access.log');
  const config = {
    ...testConfig([{ port: ctx.a!.port }], { workers: 1, request_id_header: null }),
    access_log: { file },
  };
  await withSluice(config, async (sluice, port) => {
    const path = `/no-id/${unique('n')}`;
    const answer = await get(port, path);
    assert.is(answer.status, 200);
    assert.is(answer.headers['x-request-id'], undefined, 'no id on the response');
    const seen = ctx.a!.received.find((r) => r.url === path);
    assert.ok(seen);
    assert.is(seen.headers['x-request-id'], undefined, 'no id on the upstream request');
    const line = await lineFor(file, (l) => l['path'] === path);
    assertShape(line, sluice.pid);
    assert.is(line['request_id'], null);
  });
});

outputs('request_id_header names the header: a new id goes up and back in it, a sent one is kept', async (ctx) => {
  const file = join(tempDir('sluice-access-traceid-'), 'access.log');
  const config = {
    ...testConfig([{ port: ctx.a!.port }], { workers: 1, request_id_header: 'X-Trace-Id' }),
    access_log: { file },
  };
  await withSluice(config, async (_sluice, port) => {
    const path = `/trace/${unique('t')}`;
    const answer = await get(port, path);
    const generated = header(answer, 'x-trace-id');
    assert.ok(generated, 'a new id on the response');
    assert.is(answer.headers['x-request-id'], undefined, 'not in the default header');
    assert.is(ctx.a!.received.find((r) => r.url === path)?.headers['x-trace-id'], generated);
    assert.is((await lineFor(file, (l) => l['path'] === path))['request_id'], generated);

    const sentPath = `/trace/${unique('sent')}`;
    const sent = unique('trace-sent');
    assert.is(header(await get(port, sentPath, { headers: { 'x-trace-id': sent } }), 'x-trace-id'), sent);
    assert.is(ctx.a!.received.find((r) => r.url === sentPath)?.headers['x-trace-id'], sent);
    assert.is((await lineFor(file, (l) => l['path'] === sentPath))['request_id'], sent);
  });
});

outputs("combined: nginx's line byte for byte", async (ctx) => {
  const file = join(tempDir('sluice-access-combined-'), 'access.log');
  const config = { ...testConfig([{ port: ctx.a!.port }], { workers: 1 }), access_log: { file, format: 'combined' } };
  await withSluice(config, async (_sluice, port) => {
    const before = Date.now();
    const answer = await get(port, '/combined/x?q=1&r=2', {
      headers: { referer: 'http://referer.example/from', 'user-agent': 'Mozilla/5.0 (e2e) combined/1.0' },
    });
    assert.is(answer.status, 200);
    const text = await until(
      () => (existsSync(file) ? readFileSync(file, 'utf8') : ''),
      (t) => t.endsWith('\n'),
    );
    const lines = text.split('\n').slice(0, -1);
    assert.is(lines.length, 1, text);
    const match =
      /^127\.0\.0\.1 - - \[(\d\d)\/([A-Z][a-z]{2})\/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\] (.*)$/.exec(
        lines[0]!,
      );
    assert.ok(match, `the time_local part: ${lines[0]}`);
    assert.is(
      match[10],
      `"GET /combined/x?q=1&r=2 HTTP/1.1" 200 ${Buffer.byteLength(answer.body)} "http://referer.example/from" "Mozilla/5.0 (e2e) combined/1.0"`,
    );
    // The time is local time with its offset: as UTC it is the request's second.
    const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
    const [, day, month, year, hh, mm, ss, sign, oh, om] = match;
    const offsetMs = (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om)) * 60_000;
    const utc =
      Date.UTC(Number(year), months.indexOf(month!), Number(day), Number(hh), Number(mm), Number(ss)) - offsetMs;
    assert.ok(utc >= Math.floor(before / 1000) * 1000 - 1000 && utc <= Date.now(), `time ${match[0]} is the request's`);
  });
});

outputs.run();
