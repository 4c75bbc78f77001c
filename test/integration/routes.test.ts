/**
 * Routes and upstream groups, black-box through real sluice processes: the
 * same routing table holds in every engine a request can enter by (the fast
 * path, the hooks path, Node's HTTP server), for plain requests and upgrades;
 * then config errors, `-t` warnings, readiness and start-up per routed
 * upstream, an upstream down or empty, and `/status`.
 */
import { spawnSync } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { get, until, type Answer } from '../support/http.ts';
import {
  killAll,
  type LogLine,
  type SluiceProcess,
  startRouting,
  startSluice,
  stopSluice,
  transitionTo,
} from '../support/sluice-process.ts';
import { HEALTH_PATH } from '../support/upstream.ts';
import { testConfig, writeConfig } from '../support/config-file.ts';
import type { HealthDocument, ReadyDocument } from '../support/documents.ts';

const emptyHooks = fileURLToPath(new URL('../fixtures/empty-hooks.ts', import.meta.url));
const mainFile = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

// ---------------------------------------------------------------------------
// A test upstream that says who it is, in its body and in a `Server` header,
// records plain requests, upgrades and health probes apart, and accepts
// upgrades with a 101.

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

interface Service {
  name: string;
  port: number;
  /** Forwarded requests (probes excluded). */
  received: Seen[];
  /** Upgrade requests tunnelled to it. */
  upgrades: Seen[];
  /** The path of every health probe it got, on any health path. */
  probes: string[];
  close(): Promise<void>;
  reopen(): Promise<void>;
}

/** Paths any test config probes; a service answers 200 on its own, 503 on the others. */
const PROBE_PATHS = new Set([HEALTH_PATH, '/api-health']);

async function startService(name: string, healthPath = HEALTH_PATH): Promise<Service> {
  const received: Seen[] = [];
  const upgrades: Seen[] = [];
  const probes: string[] = [];
  const tunnels = new Set<Socket>();
  let server: Server;
  const make = () => {
    const made = createServer((req, res) => {
      if (PROBE_PATHS.has(req.url!)) {
        probes.push(req.url!);
        res.writeHead(req.url === healthPath ? 200 : 503, { 'content-length': '0' });
        return void res.end();
      }
      received.push({ method: req.method!, url: req.url!, headers: req.headers });
      req.resume();
      req.on('end', () => {
        const body = `${name}\n`;
        res.writeHead(200, {
          'content-type': 'text/plain',
          'content-length': Buffer.byteLength(body),
          // Mixed case: header edits match names case-insensitively.
          Server: `${name}-server`,
          'strict-transport-security': 'max-age=0',
          'x-served-by': name,
        });
        res.end(body);
      });
    });
    made.on('upgrade', (req, socket: Socket) => {
      upgrades.push({ method: req.method!, url: req.url!, headers: req.headers });
      tunnels.add(socket);
      socket.on('error', () => {
        /* the test asserts on what the socket received; a reset is one such outcome */
      });
      // The client left: so does the backend, as a WebSocket server would (an open tunnel holds a drain).
      socket.on('end', () => socket.end());
      socket.on('close', () => tunnels.delete(socket));
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\nx-served-by: ${name}\r\n\r\n`,
      );
    });
    return made;
  };
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server = make();
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port }, () => resolve((server.address() as { port: number }).port));
    });
  const service: Service = {
    name,
    port: await listen(0),
    received,
    upgrades,
    probes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of tunnels) socket.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    reopen: async () => {
      await listen(service.port);
    },
  };
  return service;
}

/** A port nothing listens on: a service started and closed again. */
async function deadPort(): Promise<number> {
  const service = await startService('dead');
  await service.close();
  return service.port;
}

const backend = (service: { port: number }) => ({ address: '127.0.0.1', port: service.port });
const backendId = (port: number) => `127.0.0.1:${port}`;
/** The health checker's flip line for one backend. */
const flipped = (port: number, to: 'healthy' | 'unhealthy') => (l: LogLine) =>
  l['actor'] === 'health-checker' && l['backend'] === backendId(port) && l['to'] === to;

// ---------------------------------------------------------------------------
// Upgrade requests on a raw socket.

interface UpgradeAnswer {
  status: number;
  head: string;
  body: string;
}

/** Sends a WebSocket-style upgrade; resolves at the 101 head, or with the whole answer once the proxy closes. */
function upgrade(port: number, path: string, headers: Record<string, string>): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    let settled = false;
    const settle = (answer: UpgradeAnswer | Error) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (answer instanceof Error) reject(answer);
      else resolve(answer);
    };
    const parse = (): UpgradeAnswer | undefined => {
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return undefined;
      const head = text.slice(0, end);
      return { status: Number(head.split(' ', 2)[1]), head, body: text.slice(end + 4) };
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      const answer = parse();
      if (answer?.status === 101) settle(answer);
    });
    socket.on('error', () => {
      /* the test asserts on what the socket received; a reset is one such outcome */
    });
    socket.on('close', () => settle(parse() ?? new Error(`closed without an answer; got ${JSON.stringify(text)}`)));
    socket.setTimeout(5_000, () => settle(new Error(`no answer within 5 s; got ${JSON.stringify(text)}`)));
    let lines = `GET ${path} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries({
      ...headers,
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    })) {
      lines += `${name}: ${value}\r\n`;
    }
    socket.write(`${lines}\r\n`);
  });
}

/** A header of a raw head, lowercase name. */
const headHeader = (head: string, name: string) =>
  head
    .split('\r\n')
    .slice(1)
    .find((line) => line.toLowerCase().startsWith(`${name}:`))
    ?.slice(name.length + 1)
    .trim();

const NO_ROUTE_BODY = '{"error":"no_route"}';

// ---------------------------------------------------------------------------
// The routing table, over every engine.

type Upstream = 'api' | 'web' | 'other';

/** The example routes (api, admin-block, web), web scoped to its host so that some requests match none, plus one route per match field. */
const routes = [
  { name: 'api', match: { host: 'api.example.com', path_prefix: '/v1' }, upstream: 'api', strip_prefix: true },
  { name: 'admin-block', match: { path_prefix: '/internal' }, respond: { status: 403, body: 'forbidden\n' } },
  { name: 'exact', match: { path_exact: '/exact' }, upstream: 'other' },
  { name: 'wild', match: { host: '*.wild.test' }, upstream: 'other' },
  { name: 'writes', match: { path_prefix: '/write', methods: ['POST', 'PUT'] }, upstream: 'other' },
  { name: 'flagged', match: { path_prefix: '/flag', headers: { 'x-flag': 'on' } }, upstream: 'other' },
  // The rest of the API host goes to web, without web's header edits (those belong to the next route).
  { name: 'api-rest', match: { host: 'api.example.com' }, upstream: 'web' },
  {
    name: 'web',
    match: { host: 'www.example.com', path_prefix: '/' },
    upstream: 'web',
    request_headers: { set: { 'x-env': 'prod' }, remove: ['x-debug'] },
    response_headers: { set: { 'strict-transport-security': 'max-age=31536000' }, remove: ['server'] },
  },
];

interface Case {
  what: string;
  host: string;
  path: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  status: number;
  /** Which upstream must get it (exactly once, and no other upstream anything); none: the proxy answers. */
  upstream?: Upstream;
  /** The target that upstream sees. */
  url?: string;
  answerBody?: string;
  /** Headers the upstream must see (`undefined`: must not see). */
  seenHeaders?: Record<string, string | undefined>;
  /** Headers the client must get (`undefined`: must not get). */
  answerHeaders?: Record<string, string | undefined>;
}

const API = 'api.example.com';
const WWW = 'www.example.com';
const NONE = 'nomatch.test';

const cases: Case[] = [
  {
    what: 'host + path_prefix, strip_prefix keeps the rest and the query',
    host: API,
    path: '/v1/users?q=1',
    status: 200,
    upstream: 'api',
    url: '/users?q=1',
    answerBody: 'api\n',
  },
  { what: 'strip_prefix of the whole path leaves /', host: API, path: '/v1', status: 200, upstream: 'api', url: '/' },
  {
    what: 'strip_prefix of the whole path with a query leaves /?query',
    host: API,
    path: '/v1?q=1',
    status: 200,
    upstream: 'api',
    url: '/?q=1',
  },
  {
    what: 'strip_prefix with a trailing slash leaves /',
    host: API,
    path: '/v1/',
    status: 200,
    upstream: 'api',
    url: '/',
  },
  {
    what: 'host matches case-insensitively and ignores the port',
    host: 'API.Example.COM:8080',
    path: '/v1/x',
    status: 200,
    upstream: 'api',
    url: '/x',
  },
  {
    what: 'the upstream sees the client Host',
    host: API,
    path: '/v1/h',
    status: 200,
    upstream: 'api',
    url: '/h',
    seenHeaders: { host: API },
  },
  {
    what: 'path_prefix is by segment: /v10 is not in /v1 (a later route takes it)',
    host: API,
    path: '/v10',
    status: 200,
    upstream: 'web',
    url: '/v10',
  },
  { what: 'path_prefix ignores the query', host: API, path: '/v1?x=/v2', status: 200, upstream: 'api', url: '/?x=/v2' },
  {
    what: 'unreserved escapes are decoded for matching; the upstream gets the rest as sent',
    host: API,
    path: '/%76%31/x%41',
    status: 200,
    upstream: 'api',
    url: '/x%41',
  },
  {
    what: 'an escaped slash is not decoded: /v1%2Fx is not in /v1',
    host: API,
    path: '/v1%2Fx',
    status: 200,
    upstream: 'web',
    url: '/v1%2Fx',
  },
  {
    what: 'the api route does not take another host',
    host: WWW,
    path: '/v1/users',
    status: 200,
    upstream: 'web',
    url: '/v1/users',
  },
  {
    what: 'first match wins: /v1/internal on the API host is the api route, not admin-block',
    host: API,
    path: '/v1/internal',
    status: 200,
    upstream: 'api',
    url: '/internal',
  },
  {
    what: 'first match wins: /internal on the API host is admin-block, not api-rest',
    host: API,
    path: '/internal',
    status: 403,
    answerBody: 'forbidden\n',
  },
  {
    what: 'respond answers itself, for any host',
    host: WWW,
    path: '/internal/x?y=1',
    status: 403,
    answerBody: 'forbidden\n',
  },
  {
    what: 'respond answers every method',
    host: NONE,
    path: '/internal',
    method: 'POST',
    body: 'payload',
    status: 403,
    answerBody: 'forbidden\n',
  },
  {
    what: 'unreserved escapes are decoded for a respond route too',
    host: WWW,
    path: '/%69nternal',
    status: 403,
    answerBody: 'forbidden\n',
  },
  {
    what: 'path_prefix by segment: /internalx is not blocked',
    host: WWW,
    path: '/internalx',
    status: 200,
    upstream: 'web',
    url: '/internalx',
  },
  {
    what: 'path_exact matches the path alone',
    host: NONE,
    path: '/exact',
    status: 200,
    upstream: 'other',
    url: '/exact',
  },
  {
    what: 'path_exact ignores the query',
    host: NONE,
    path: '/exact?a=1',
    status: 200,
    upstream: 'other',
    url: '/exact?a=1',
  },
  { what: 'path_exact does not match a longer path', host: NONE, path: '/exact/more', status: 404 },
  { what: 'path_exact does not match a path it is a prefix of', host: NONE, path: '/exactly', status: 404 },
  {
    what: '*.domain matches a subdomain',
    host: 'a.wild.test',
    path: '/any',
    status: 200,
    upstream: 'other',
    url: '/any',
  },
  {
    what: '*.domain matches a deeper subdomain, any case, with a port',
    host: 'B.A.Wild.Test:81',
    path: '/any',
    status: 200,
    upstream: 'other',
    url: '/any',
  },
  { what: '*.domain does not match the domain itself', host: 'wild.test', path: '/any', status: 404 },
  { what: '*.domain does not match a name that only ends like it', host: 'notwild.test', path: '/any', status: 404 },
  {
    what: 'methods: a listed method matches',
    host: NONE,
    path: '/write',
    method: 'POST',
    body: 'hello',
    status: 200,
    upstream: 'other',
    url: '/write',
  },
  {
    what: 'methods: another listed method matches',
    host: NONE,
    path: '/write/1',
    method: 'PUT',
    body: 'hello',
    status: 200,
    upstream: 'other',
    url: '/write/1',
  },
  { what: 'methods: an unlisted method does not', host: NONE, path: '/write', method: 'GET', status: 404 },
  {
    what: 'headers: the exact value matches',
    host: NONE,
    path: '/flag',
    headers: { 'x-flag': 'on' },
    status: 200,
    upstream: 'other',
    url: '/flag',
  },
  { what: 'headers: another value does not', host: NONE, path: '/flag', headers: { 'x-flag': 'off' }, status: 404 },
  { what: 'headers: an absent header does not', host: NONE, path: '/flag', status: 404 },
  {
    what: 'no route: 404 no_route',
    host: NONE,
    path: '/',
    status: 404,
    answerBody: NO_ROUTE_BODY,
    answerHeaders: { 'content-type': 'application/json' },
  },
  {
    what: 'no route for a HEAD: 404 no_route head, no body',
    host: NONE,
    path: '/',
    method: 'HEAD',
    status: 404,
    answerBody: '',
    answerHeaders: { 'content-type': 'application/json' },
  },
  {
    what: 'no route for a POST with a body: 404 no_route',
    host: NONE,
    path: '/nothing',
    method: 'POST',
    body: 'x'.repeat(1000),
    status: 404,
    answerBody: NO_ROUTE_BODY,
  },
  {
    what: 'request_headers: set replaces the client value, remove drops the header',
    host: WWW,
    path: '/page',
    headers: { 'x-env': 'dev', 'X-Debug': '1', 'x-keep': 'kept' },
    status: 200,
    upstream: 'web',
    url: '/page',
    seenHeaders: { 'x-env': 'prod', 'x-debug': undefined, 'x-keep': 'kept' },
  },
  {
    what: 'response_headers: set replaces what the upstream sent, remove drops it',
    host: WWW,
    path: '/page',
    status: 200,
    upstream: 'web',
    url: '/page',
    answerBody: 'web\n',
    answerHeaders: { 'strict-transport-security': 'max-age=31536000', server: undefined, 'x-served-by': 'web' },
  },
  {
    what: 'header edits belong to their route: the same upstream by another route gets none',
    host: API,
    path: '/other',
    headers: { 'x-debug': '1' },
    status: 200,
    upstream: 'web',
    url: '/other',
    seenHeaders: { 'x-env': undefined, 'x-debug': '1' },
    answerHeaders: { server: 'web-server', 'strict-transport-security': 'max-age=0' },
  },
  {
    what: 'a route without header edits passes the response headers as sent',
    host: API,
    path: '/v1/plain',
    status: 200,
    upstream: 'api',
    url: '/plain',
    answerHeaders: { server: 'api-server', 'strict-transport-security': 'max-age=0' },
  },
];

interface EngineContext {
  services?: Record<Upstream, Service>;
  sluice?: SluiceProcess;
  port?: number;
}

const allSeen = (services: Record<Upstream, Service>) =>
  Object.values(services)
    .map((s) => `${s.name}: ${JSON.stringify([...s.received, ...s.upgrades].map((r) => r.url))}`)
    .join(', ');

const clear = (services: Record<Upstream, Service>) => {
  for (const s of Object.values(services)) {
    s.received.length = 0;
    s.upgrades.length = 0;
  }
};

function engineSuite(engine: 'fast' | 'hooks' | 'node', proxy: Record<string, unknown>): void {
  const routing = suite<EngineContext>(`routes (${engine} engine)`);

  routing.before(async (ctx) => {
    const services = {
      api: await startService('api'),
      web: await startService('web'),
      other: await startService('other'),
    };
    ctx.services = services;
    const config = {
      ...testConfig([], { workers: 1, ...proxy }),
      upstreams: {
        api: {
          backends: [backend(services.api)],
          health_check: { path: HEALTH_PATH },
          load_balancing: { algorithm: 'least_connections' },
        },
        web: { backends: [backend(services.web)] },
        other: { backends: [backend(services.other)] },
      },
      routes,
    };
    ({ sluice: ctx.sluice, port: ctx.port } = await startRouting(['-c', writeConfig(config)], 1, 3));
    // Otherwise this suite would silently test the fast path again.
    if (engine === 'hooks') await ctx.sluice.waitForLog((l) => l['event'] === 'hooks.loaded');
  });

  routing.after(async (ctx) => {
    await stopSluice(ctx.sluice);
    for (const s of Object.values(ctx.services ?? {})) await s.close();
    killAll();
  });

  for (const c of cases) {
    routing(
      `${engine}: ${c.what} (${c.method ?? 'GET'} ${c.host} ${c.path} → ${c.status}${c.upstream ? ` at ${c.upstream} ${c.url}` : ''})`,
      async (ctx) => {
        const services = ctx.services!;
        clear(services);
        const answer: Answer = await get(ctx.port!, c.path, {
          method: c.method ?? 'GET',
          headers: { host: c.host, ...c.headers },
          ...(c.body !== undefined && { body: c.body }),
        });
        assert.is(answer.status, c.status, `body: ${JSON.stringify(answer.body)}`);
        if (c.answerBody !== undefined) assert.is(answer.body, c.answerBody);
        for (const [name, value] of Object.entries(c.answerHeaders ?? {}))
          assert.is(answer.headers[name], value, `response header ${name}`);
        for (const s of Object.values(services)) {
          const expected = s.name === c.upstream ? 1 : 0;
          assert.is(
            s.received.length + s.upgrades.length,
            expected,
            `${s.name} got ${expected === 1 ? 'the request once' : 'nothing'}; seen: ${allSeen(services)}`,
          );
        }
        if (!c.upstream) return;
        const seen = services[c.upstream].received[0]!;
        assert.is(seen.url, c.url);
        assert.is(seen.method, c.method ?? 'GET');
        for (const [name, value] of Object.entries(c.seenHeaders ?? {}))
          assert.is(seen.headers[name], value, `upstream saw ${name}`);
      },
    );
  }

  routing(`${engine}: routing holds on one keep-alive connection from request to request`, async (ctx) => {
    const services = ctx.services!;
    clear(services);
    const answers = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: ctx.port! });
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => (text += chunk));
      socket.on('error', reject);
      socket.on('close', () => resolve(text));
      socket.setTimeout(5_000, () => socket.destroy());
      socket.end(
        `GET /v1/one HTTP/1.1\r\nHost: ${API}\r\n\r\n` +
          `GET /nowhere HTTP/1.1\r\nHost: ${NONE}\r\n\r\n` +
          `GET /two HTTP/1.1\r\nHost: ${WWW}\r\n\r\n` +
          `GET /exact HTTP/1.1\r\nHost: ${NONE}\r\nConnection: close\r\n\r\n`,
      );
    });
    const statuses = [...answers.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    assert.equal(statuses, [200, 404, 200, 200], answers);
    assert.equal(
      services.api.received.map((r) => r.url),
      ['/one'],
    );
    assert.equal(
      services.web.received.map((r) => r.url),
      ['/two'],
    );
    assert.equal(
      services.other.received.map((r) => r.url),
      ['/exact'],
    );
  });

  routing(`${engine}: an upgrade goes to the routed upstream only, with strip_prefix`, async (ctx) => {
    const services = ctx.services!;
    clear(services);
    const answer = await upgrade(ctx.port!, '/v1/socket?room=1', { host: API });
    assert.is(answer.status, 101, answer.head);
    assert.is(headHeader(answer.head, 'x-served-by'), 'api');
    assert.equal(
      services.api.upgrades.map((r) => r.url),
      ['/socket?room=1'],
    );
    assert.is(services.api.upgrades[0]!.headers.upgrade, 'websocket');
    for (const s of [services.web, services.other])
      assert.is(s.received.length + s.upgrades.length, 0, `seen: ${allSeen(services)}`);
  });

  routing(`${engine}: an upgrade by a route with request_headers gets them edited`, async (ctx) => {
    const services = ctx.services!;
    clear(services);
    const answer = await upgrade(ctx.port!, '/chat', { host: WWW, 'x-env': 'dev', 'x-debug': '1' });
    assert.is(answer.status, 101, answer.head);
    assert.equal(
      services.web.upgrades.map((r) => r.url),
      ['/chat'],
    );
    assert.is(services.web.upgrades[0]!.headers['x-env'], 'prod');
    assert.is(services.web.upgrades[0]!.headers['x-debug'], undefined);
    for (const s of [services.api, services.other])
      assert.is(s.received.length + s.upgrades.length, 0, `seen: ${allSeen(services)}`);
  });

  routing(`${engine}: an upgrade no route matches: 404, no upstream contacted`, async (ctx) => {
    const services = ctx.services!;
    clear(services);
    const answer = await upgrade(ctx.port!, '/chat', { host: NONE });
    assert.is(answer.status, 404, answer.head);
    for (const s of Object.values(services))
      assert.is(s.received.length + s.upgrades.length, 0, `seen: ${allSeen(services)}`);
  });

  routing(`${engine}: an upgrade no route matches gets the same no_route body as any request`, async (ctx) => {
    const answer = await upgrade(ctx.port!, '/chat', { host: NONE });
    assert.is(answer.status, 404, answer.head);
    assert.is(headHeader(answer.head, 'content-type'), 'application/json', answer.head);
    assert.is(answer.body, NO_ROUTE_BODY);
  });

  routing(`${engine}: an upgrade to a respond route gets its status and body, no upstream contacted`, async (ctx) => {
    const services = ctx.services!;
    clear(services);
    const answer = await upgrade(ctx.port!, '/internal/socket', { host: WWW });
    assert.is(answer.status, 403, answer.head);
    for (const s of Object.values(services))
      assert.is(s.received.length + s.upgrades.length, 0, `seen: ${allSeen(services)}`);
    assert.is(answer.body, 'forbidden\n');
  });

  routing.run();
}

engineSuite('fast', {});
engineSuite('hooks', { request_hooks: emptyHooks });
engineSuite('node', { fast_path: false });

// ---------------------------------------------------------------------------
// Config errors and `-t` warnings.

const run = (...args: string[]) => {
  const result = spawnSync(process.execPath, [mainFile, ...args], { encoding: 'utf8', timeout: 10_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
};

const configErrors = suite('route and upstream config errors');

const invalid: [string, unknown, string, string][] = [
  [
    'an upstream named default besides top-level backends',
    {
      backends: [{ address: '127.0.0.1', port: 9001 }],
      upstreams: { default: { backends: [{ address: '127.0.0.1', port: 9002 }] } },
    },
    '$.upstreams.default',
    'default',
  ],
  [
    'a route naming an upstream that does not exist',
    {
      upstreams: { web: { backends: [{ address: '127.0.0.1', port: 9001 }] } },
      routes: [
        { match: { path_prefix: '/a' }, upstream: 'web' },
        { match: {}, upstream: 'nope' },
      ],
    },
    '$.routes[1].upstream',
    '"nope"',
  ],
  [
    'one address:port in two upstreams',
    {
      upstreams: {
        a: { backends: [{ address: '127.0.0.1', port: 9001 }] },
        b: {
          backends: [
            { address: '127.0.0.1', port: 9003 },
            { address: '127.0.0.1', port: 9001 },
          ],
        },
      },
    },
    '$.upstreams.b.backends[1]',
    '127.0.0.1:9001',
  ],
  [
    'one address:port in the top-level backends and an upstream',
    {
      backends: [{ address: '127.0.0.1', port: 9001 }],
      upstreams: { a: { backends: [{ address: '127.0.0.1', port: 9001 }] } },
    },
    '$.upstreams.a.backends[0]',
    '127.0.0.1:9001',
  ],
];

for (const [what, document, path, value] of invalid) {
  configErrors(`${what}: exit 2, one line with the file, ${path} and ${value}`, () => {
    const file = writeConfig(document);
    for (const args of [
      ['-t', '-c', file],
      ['-c', file],
    ]) {
      const result = run(...args);
      assert.is(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      const lines = result.stderr.trim().split('\n');
      assert.is(lines.length, 1, result.stderr);
      assert.match(lines[0]!, file);
      assert.match(lines[0]!, path);
      assert.match(lines[0]!, value);
      assert.is(result.stdout, '', 'nothing starts');
    }
  });
}

configErrors.run();

const warnings = suite('-t: unreachable routes');

const web = { upstreams: { web: { backends: [{ address: '127.0.0.1', port: 9001 }] } } };

warnings('a route after one with an empty match: a warning naming it on stderr, exit 0', () => {
  const file = writeConfig({
    ...web,
    routes: [
      { name: 'everything', match: {}, upstream: 'web' },
      { name: 'api', match: { path_prefix: '/v1' }, upstream: 'web' },
    ],
  });
  const result = run('-t', '-c', file);
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout, 'valid');
  const lines = result.stderr.trim().split('\n');
  assert.is(lines.length, 1, result.stderr);
  assert.match(lines[0]!, 'warning');
  assert.match(lines[0]!, '$.routes[1]');
  assert.match(lines[0]!, '"api"');
  assert.match(lines[0]!, 'unreachable');
  assert.match(lines[0]!, '"everything"');
});

warnings('a route after path_prefix "/": a warning naming it, exit 0', () => {
  const file = writeConfig({
    ...web,
    routes: [
      { name: 'v2', match: { path_prefix: '/v2' }, upstream: 'web' },
      { name: 'root', match: { path_prefix: '/' }, upstream: 'web' },
      { name: 'late', match: { path_prefix: '/v1', methods: ['GET'] }, upstream: 'web' },
    ],
  });
  const result = run('-t', '-c', file);
  assert.is(result.code, 0, result.stderr);
  const lines = result.stderr.trim().split('\n');
  assert.is(lines.length, 1, result.stderr);
  assert.match(lines[0]!, '$.routes[2]');
  assert.match(lines[0]!, '"late"');
  assert.match(lines[0]!, '"root"');
});

warnings('reachable routes: no warning (a /v10 prefix is not inside /v1, another host is not shadowed)', () => {
  const file = writeConfig({
    ...web,
    routes: [
      { name: 'v1', match: { path_prefix: '/v1' }, upstream: 'web' },
      { name: 'v10', match: { path_prefix: '/v10' }, upstream: 'web' },
      { name: 'api', match: { host: 'api.example.com' }, upstream: 'web' },
      { name: 'www', match: { host: 'www.example.com' }, upstream: 'web' },
    ],
  });
  const result = run('-t', '-c', file);
  assert.is(result.code, 0, result.stderr);
  assert.is(result.stderr, '');
});

warnings.run();

// ---------------------------------------------------------------------------
// Readiness per routed upstream, and one upstream down.

const oneDown = suite<{ api?: Service; web?: Service; sluice?: SluiceProcess; port?: number; apiDown?: Promise<void> }>(
  'one routed upstream down',
);

oneDown.before(async (ctx) => {
  ctx.api = await startService('api');
  ctx.web = await startService('web');
  const config = {
    ...testConfig([], { workers: 1 }),
    upstreams: {
      api: { backends: [backend(ctx.api)] },
      web: { backends: [backend(ctx.web)] },
      // No route names it: its backend being down must not count.
      spare: { backends: [{ address: '127.0.0.1', port: await deadPort() }] },
    },
    routes: [
      { name: 'api', match: { host: API, path_prefix: '/v1' }, upstream: 'api', strip_prefix: true },
      { name: 'web', match: { path_prefix: '/' }, upstream: 'web' },
    ],
  };
  ({ sluice: ctx.sluice, port: ctx.port } = await startRouting(['-c', writeConfig(config)], 1, 2));
});

oneDown.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  await ctx.api?.close();
  await ctx.web?.close();
  killAll();
});

/** Closes api's only backend once, and waits until the listener no longer routes to it. */
const takeApiDown = (ctx: { api?: Service; sluice?: SluiceProcess; port?: number; apiDown?: Promise<void> }) =>
  (ctx.apiDown ??= (async () => {
    const from = ctx.sluice!.lines.length;
    await ctx.api!.close();
    await ctx.sluice!.waitForLog(flipped(ctx.api!.port, 'unhealthy'), 10_000, from);
    // The listener's snapshot after the flip: only web's backend left.
    await ctx.sluice!.waitForLog((l) => l['event'] === 'snapshot.applied' && l['selectable'] === 1, 10_000, from);
  })());

oneDown('an upstream no route names does not hold /ready back, though its backend is down', async (ctx) => {
  const ready = await get(ctx.port!, '/ready');
  assert.is(ready.status, 200, ready.body);
  assert.equal(JSON.parse(ready.body), {
    ready: true,
    checks: { backends_available: true, pool_healthy: true, cache_healthy: true },
  });
});

oneDown(
  'a routed upstream with no selectable backend: /ready 503, backends_available false, same body shape',
  async (ctx) => {
    await takeApiDown(ctx);
    const ready = await until(
      () => get(ctx.port!, '/ready'),
      (a) => a.status !== 200,
      40,
      50,
    );
    assert.is(ready.status, 503);
    assert.equal(JSON.parse(ready.body), {
      ready: false,
      checks: { backends_available: false, pool_healthy: true, cache_healthy: true },
    });
    assert.is((await get(ctx.port!, '/health')).status, 200, 'the lifecycle stays healthy');
  },
);

oneDown('api down: /v1 on the api host gets 502 and the web backend gets nothing', async (ctx) => {
  await takeApiDown(ctx);
  ctx.web!.received.length = 0;
  const answer = await get(ctx.port!, '/v1/users', { headers: { host: API } });
  assert.is(answer.status, 502, answer.body);
  assert.equal(
    ctx.web!.received.map((r) => r.url),
    [],
  );
});

oneDown('api down: an upgrade to /v1 gets 502 and the web backend gets nothing', async (ctx) => {
  await takeApiDown(ctx);
  ctx.web!.upgrades.length = 0;
  const answer = await upgrade(ctx.port!, '/v1/socket', { host: API });
  assert.is(answer.status, 502, answer.head);
  assert.equal(
    ctx.web!.upgrades.map((r) => r.url),
    [],
  );
});

oneDown('api down: the web route is still served', async (ctx) => {
  await takeApiDown(ctx);
  const answer = await get(ctx.port!, '/v1/users', { headers: { host: WWW } });
  assert.is(answer.status, 200);
  assert.is(answer.body, 'web\n');
});

oneDown.run();

const minHealthy = suite<{ api?: Service; web?: Service; web2?: Service; sluice?: SluiceProcess; port?: number }>(
  'min_healthy per upstream',
);

minHealthy.before(async (ctx) => {
  ctx.api = await startService('api');
  ctx.web = await startService('web');
  ctx.web2 = await startService('web2');
  await ctx.web2.close();
  const config = {
    ...testConfig([], { workers: 1 }),
    upstreams: {
      api: { backends: [backend(ctx.api)] },
      web: { backends: [backend(ctx.web), backend(ctx.web2)], health_check: { min_healthy: 2 } },
    },
    routes: [
      { match: { path_prefix: '/v1' }, upstream: 'api' },
      { match: {}, upstream: 'web' },
    ],
  };
  ({ sluice: ctx.sluice, port: ctx.port } = await startRouting(['-c', writeConfig(config)], 1, 2));
});

minHealthy.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  for (const s of [ctx.api, ctx.web, ctx.web2]) await s?.close();
  killAll();
});

minHealthy(
  "start-up needs one backend per routed upstream; /ready needs each upstream's own min_healthy",
  async (ctx) => {
    const down = await get(ctx.port!, '/ready');
    assert.is(down.status, 503, down.body);
    assert.is((JSON.parse(down.body) as ReadyDocument).checks.backends_available, false);
    const from = ctx.sluice!.lines.length;
    await ctx.web2!.reopen();
    await ctx.sluice!.waitForLog(flipped(ctx.web2!.port, 'healthy'), 10_000, from);
    const up = await until(
      () => get(ctx.port!, '/ready'),
      (a) => a.status === 200,
    );
    assert.equal(JSON.parse(up.body), {
      ready: true,
      checks: { backends_available: true, pool_healthy: true, cache_healthy: true },
    });
  },
);

minHealthy.run();

// ---------------------------------------------------------------------------
// Start-up waits for every routed upstream.

const startup = suite<{ api?: Service; web?: Service; sluice?: SluiceProcess }>('start-up per routed upstream');

startup.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  await ctx.api?.close();
  await ctx.web?.close();
  killAll();
});

startup('healthy only once every routed upstream has a selectable backend', async (ctx) => {
  ctx.api = await startService('api');
  await ctx.api.close();
  ctx.web = await startService('web');
  const config = {
    ...testConfig([], { workers: 1, startup_timeout_ms: 30_000 }),
    upstreams: { api: { backends: [backend(ctx.api)] }, web: { backends: [backend(ctx.web)] } },
    routes: [
      { match: { path_prefix: '/v1' }, upstream: 'api' },
      { match: {}, upstream: 'web' },
    ],
  };
  const sluice = (ctx.sluice = startSluice(['-c', writeConfig(config), '--log-level', 'debug']));
  const port = await sluice.port();
  await sluice.waitForLog(flipped(ctx.web.port, 'healthy'));
  // The listener routes to web's backend: the supervisor had the same snapshot.
  await sluice.waitForLog((l) => l['event'] === 'snapshot.applied' && (l['selectable'] as number) >= 1);
  const health = await get(port, '/health');
  assert.is(health.status, 503, health.body);
  assert.is((JSON.parse(health.body) as HealthDocument).state, 'starting');
  assert.not.ok(sluice.lines.some(transitionTo('healthy')), 'not healthy with api down');

  const from = sluice.lines.length;
  await ctx.api.reopen();
  await sluice.waitForLog(transitionTo('healthy'), 10_000, from);
  assert.is((await get(port, '/health')).status, 200);
});

startup('a config of respond routes only starts with require_healthy_backends false, and answers', async (ctx) => {
  const config = {
    ...testConfig([], { workers: 1, require_healthy_backends: false }),
    routes: [{ name: 'gone', match: {}, respond: { status: 410, body: 'gone\n' } }],
  };
  const sluice = (ctx.sluice = startSluice(['-c', writeConfig(config), '--log-level', 'debug']));
  const port = await sluice.port();
  await sluice.waitForLog(transitionTo('healthy'));
  const answer = await get(port, '/anything');
  assert.is(answer.status, 410);
  assert.is(answer.body, 'gone\n');
  assert.is((await get(port, '/ready')).status, 200, 'no route reaches an upstream: nothing to wait for');
});

startup.run();

// ---------------------------------------------------------------------------
// An upstream without any backend.

const empty = suite<{ web?: Service; sluice?: SluiceProcess; port?: number }>('an upstream without backends');

empty.before(async (ctx) => {
  ctx.web = await startService('web');
  const config = {
    ...testConfig([], { workers: 1, startup_timeout_ms: 30_000 }),
    upstreams: { web: { backends: [backend(ctx.web)] }, empty: { backends: [] } },
    routes: [
      { name: 'empty', match: { path_prefix: '/empty' }, upstream: 'empty' },
      { name: 'web', match: {}, upstream: 'web' },
    ],
  };
  ctx.sluice = startSluice(['-c', writeConfig(config), '--log-level', 'debug']);
  ctx.port = await ctx.sluice.port();
  await ctx.sluice.waitForLog((l) => l['event'] === 'snapshot.applied' && (l['selectable'] as number) >= 1);
});

empty.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  await ctx.web?.close();
  killAll();
});

empty(
  'a route to an upstream with "backends": [] gets 503 with Retry-After; no other upstream gets it',
  async (ctx) => {
    ctx.web!.received.length = 0;
    const answer = await get(ctx.port!, '/empty/x');
    assert.is(answer.status, 503, answer.body);
    assert.ok(answer.headers['retry-after'], `retry-after: ${String(answer.headers['retry-after'])}`);
    assert.equal(ctx.web!.received, []);
  },
);

empty('the other route is served meanwhile', async (ctx) => {
  const answer = await get(ctx.port!, '/x');
  assert.is(answer.status, 200, answer.body);
  assert.is(answer.body, 'web\n');
});

empty.run();

// ---------------------------------------------------------------------------
// Load balancing per upstream: an upstream's own keys override, the others are inherited.

const balancing = suite<{ api?: Service[]; web?: Service[]; sluice?: SluiceProcess; port?: number }>(
  'load balancing per upstream',
);

balancing.before(async (ctx) => {
  ctx.api = [await startService('api-a'), await startService('api-b')];
  ctx.web = [await startService('web-a'), await startService('web-b')];
  const config = {
    ...testConfig([], { workers: 1 }),
    // hash_key is used by api only, which takes it from here.
    load_balancing: { algorithm: 'weighted_round_robin', hash_key: 'header:x-user' },
    upstreams: {
      api: { backends: ctx.api.map(backend), load_balancing: { algorithm: 'consistent_hash' } },
      web: { backends: ctx.web.map(backend) },
    },
    routes: [
      { match: { path_prefix: '/v1' }, upstream: 'api' },
      { match: {}, upstream: 'web' },
    ],
  };
  ({ sluice: ctx.sluice, port: ctx.port } = await startRouting(['-c', writeConfig(config)], 1, 4));
});

balancing.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  for (const s of [...(ctx.api ?? []), ...(ctx.web ?? [])]) await s.close();
  killAll();
});

balancing(
  "an upstream's own algorithm, with the top-level hash_key: one user always on one backend, users spread over both",
  async (ctx) => {
    const backendOf = async (user: string) => (await get(ctx.port!, '/v1/me', { headers: { 'x-user': user } })).body;
    for (const user of ['alice', 'bob', 'carol']) {
      const first = await backendOf(user);
      assert.match(first, /^api-[ab]\n$/);
      for (let i = 0; i < 5; i++) assert.is(await backendOf(user), first, `${user} stays on ${first}`);
    }
    const used = new Set<string>();
    for (let i = 0; i < 32; i++) used.add(await backendOf(`user-${i}`));
    assert.equal([...used].sort(), ['api-a\n', 'api-b\n'], 'hashed on x-user, not on the (single) client address');
  },
);

balancing(
  'an upstream without load_balancing takes the top-level algorithm: round robin over both backends',
  async (ctx) => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 12; i++) {
      const body = (await get(ctx.port!, '/page', { headers: { 'x-user': 'alice' } })).body;
      counts[body] = (counts[body] ?? 0) + 1;
    }
    assert.equal(counts, { 'web-a\n': 6, 'web-b\n': 6 });
  },
);

balancing.run();

// ---------------------------------------------------------------------------
// /status, and health checks per upstream.

const status = suite<{ def?: Service; api?: Service; sluice?: SluiceProcess; port?: number; adminPort?: number }>(
  'upstreams in /status and health checks',
);

status.before(async (ctx) => {
  ctx.def = await startService('default');
  // Healthy only on its own health path: start-up proves its override is used.
  ctx.api = await startService('api', '/api-health');
  const config = {
    ...testConfig([{ port: ctx.def.port }], { workers: 1 }),
    upstreams: { api: { backends: [backend(ctx.api)], health_check: { path: '/api-health' } } },
    routes: [
      { match: { path_prefix: '/v1' }, upstream: 'api' },
      { match: {}, upstream: 'default' },
    ],
    admin: { listen_host: '127.0.0.1', listen_port: 0 },
  };
  ({ sluice: ctx.sluice, port: ctx.port } = await startRouting(['-c', writeConfig(config)], 1, 2));
  ctx.adminPort = (await ctx.sluice.waitForLog((l) => l['event'] === 'admin.listening'))['port'] as number;
});

status.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  await ctx.def?.close();
  await ctx.api?.close();
  killAll();
});

status('/status lists each backend with its upstream', async (ctx) => {
  const answer = await get(ctx.adminPort!, '/status');
  assert.is(answer.status, 200);
  const backends = (JSON.parse(answer.body) as { backends: { upstream: string; port: number }[] }).backends;
  const byPort = Object.fromEntries(backends.map((b) => [b.port, b.upstream]));
  assert.equal(byPort, { [ctx.def!.port]: 'default', [ctx.api!.port]: 'api' });
});

status("an upstream's own health_check.path overrides the top-level one, for its backends only", (ctx) => {
  assert.ok(ctx.api!.probes.length > 0);
  assert.equal([...new Set(ctx.api!.probes)], ['/api-health']);
  assert.equal([...new Set(ctx.def!.probes)], [HEALTH_PATH]);
});

status('the top-level backends are the default upstream a route can name', async (ctx) => {
  ctx.def!.received.length = 0;
  ctx.api!.received.length = 0;
  assert.is((await get(ctx.port!, '/v1/x')).body, 'api\n');
  assert.is((await get(ctx.port!, '/x')).body, 'default\n');
  assert.equal(
    ctx.def!.received.map((r) => r.url),
    ['/x'],
  );
  assert.equal(
    ctx.api!.received.map((r) => r.url),
    ['/v1/x'],
  );
});

status.run();
