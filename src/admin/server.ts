/**
 * The admin listener, in the main thread: status, Prometheus metrics,
 * server-sent events and the dashboard. Loopback by default and never on the
 * proxy port; with a token, every request needs `Authorization: Bearer`.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { SupervisorMetrics } from '../metrics/supervisor-metrics.ts';
import type { HealthEvent } from '../protocol.ts';
import type { AdminListener, RestartEvent, SupervisorView } from '../supervisor/supervisor-view.ts';
import type { TransitionRecord } from '../machines/history.ts';
import { machineGraph } from './machine-graph.ts';
import { statusDocument } from './status.ts';
import { AdminCache } from '../cache/admin-cache.ts';

type AdminConfig = NonNullable<Config['admin']>;

/**
 * The dashboard as one HTML document with its stylesheet and script inlined:
 * one request, so `?token=` on the page's address is the only credential the
 * browser needs (the script adds it to its own requests).
 */
function dashboardPage(): string {
  const read = (file: string) => readFileSync(new URL(`./dashboard/${file}`, import.meta.url), 'utf8');
  return read('index.html')
    .replace('<link rel="stylesheet" href="dashboard.css">', () => `<style>\n${read('dashboard.css')}</style>`)
    .replace('<script src="dashboard.js"></script>', () => `<script>\n${read('dashboard.js')}</script>`);
}

/** Sent on open SSE streams so idle proxies and browsers keep them. */
const SSE_KEEPALIVE_MS = 15_000;

export class AdminServer implements AdminListener {
  readonly #supervisor: SupervisorView;
  readonly #config: AdminConfig;
  readonly #log: Logger;
  readonly #metrics: SupervisorMetrics;
  readonly #server: Server;
  readonly #streams = new Set<ServerResponse>();
  readonly #page = dashboardPage();
  /** The shared cache's store, when a `cache` section is configured: purges, /status and /metrics figures. */
  readonly #cache: AdminCache | undefined;

  constructor(supervisor: SupervisorView, config: AdminConfig, log: Logger) {
    this.#supervisor = supervisor;
    this.#config = config;
    this.#log = log;
    this.#metrics = new SupervisorMetrics(supervisor);
    this.#cache = supervisor.config.cache ? new AdminCache(supervisor.config.cache) : undefined;
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      // reusePort: during a hot restart the old and the new process both hold the admin port.
      this.#server.listen({ host: this.#config.listen_host, port: this.#config.listen_port, reusePort: true }, () => {
        this.#server.off('error', reject);
        const port = (this.#server.address() as AddressInfo).port;
        this.#log.info(
          { event: 'admin.listening', host: this.#config.listen_host, port },
          `Admin listening on ${this.#config.listen_host}:${port}`,
        );
        resolve(port);
      });
    });
  }

  async close(): Promise<void> {
    for (const stream of this.#streams) stream.end();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await this.#cache?.close();
  }

  /** `Authorization: Bearer <token>`; or `?token=` for the browser's EventSource, which cannot set headers. */
  #authorized(req: IncomingMessage): boolean {
    const token = this.#config.token;
    if (token === null) return true;
    const fromQuery = new URL(req.url ?? '/', 'http://admin').searchParams.get('token');
    const given = Buffer.from(fromQuery !== null ? `Bearer ${fromQuery}` : (req.headers.authorization ?? ''));
    const expected = Buffer.from(`Bearer ${token}`);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.#authorized(req)) {
      unauthorized(req, res);
      return;
    }
    if (req.method === 'DELETE' && (req.url ?? '/').split('?', 1)[0] === '/cache') return this.#purge(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' });
      return void res.end();
    }
    const path = (req.url ?? '/').split('?', 1)[0]!;
    try {
      switch (path) {
        case '/status': {
          json(res, { ...statusDocument(this.#supervisor), cache: this.#cache?.status() ?? null });
          return;
        }
        case '/machine.json': {
          json(res, machineGraph());
          return;
        }
        case '/metrics': {
          const { contentType, body } = await this.#metrics.render();
          res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
          return void res.end(this.#cache ? `${body}${this.#cache.metrics()}` : body);
        }
        case '/events': {
          this.#events(res);
          return;
        }
        case '/':
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
          return void res.end(this.#page);
        default:
          res.writeHead(404, { 'content-type': 'application/json' });
          return void res.end(JSON.stringify({ error: 'not found' }));
      }
    } catch (error) {
      this.#log.error({ err: error, path }, 'admin request failed');
      if (!res.headersSent) res.writeHead(500);
      res.end();
    }
  }

  /** `DELETE /cache?url=…` (every variant of one URL) or `DELETE /cache` (everything): 200 `{"purged": N}`. */
  async #purge(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const cache = this.#cache;
    if (!cache) {
      jsonStatus(res, 404, { error: 'no cache configured' });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://admin').searchParams.get('url');
    const answer = await cache.purge(url);
    this.#log.info({ event: 'cache.purged', url, ...answer.body }, 'cache purge');
    jsonStatus(res, answer.status, answer.body);
  }

  /** Server-sent events: `state` once on connect, then every transition, health flip and actor restart. */
  #events(res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    send('state', { state: this.#supervisor.state, history: statusDocument(this.#supervisor).history });
    const onTransition = (record: TransitionRecord) =>
      send('transition', { ...record, at: new Date(record.at).toISOString() });
    const onHealth = (event: HealthEvent) =>
      send('health', {
        backend: event.observation.backend,
        from: event.from ? 'healthy' : 'unhealthy',
        to: event.observation.healthy ? 'healthy' : 'unhealthy',
        reason: event.observation.reason,
      });
    const onRestart = (event: RestartEvent) => send('restart', event);
    const keepalive = setInterval(() => res.write(': keep-alive\n\n'), SSE_KEEPALIVE_MS);
    this.#supervisor.events.on('transition', onTransition);
    this.#supervisor.events.on('health', onHealth);
    this.#supervisor.events.on('restart', onRestart);
    this.#streams.add(res);
    res.once('close', () => {
      clearInterval(keepalive);
      this.#supervisor.events.off('transition', onTransition);
      this.#supervisor.events.off('health', onHealth);
      this.#supervisor.events.off('restart', onRestart);
      this.#streams.delete(res);
    });
  }
}

const TOKEN_HINT = 'send Authorization: Bearer <admin.token>, or add ?token=<admin.token> to the address';

/**
 * 401, saying how to pass the token: a browser opening the dashboard gets a
 * page (it cannot set the header, so the address must carry `?token=`).
 */
function unauthorized(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?', 1)[0];
  if (path === '/') {
    res.writeHead(401, {
      'www-authenticate': 'Bearer',
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
    });
    return void res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sluice: token required</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>Token required</h1>
<p>This admin listener has <code>admin.token</code> set. Open the dashboard with the token in its address:</p>
<p><code>http://${escapeHtml(req.headers.host ?? 'HOST:PORT')}/?token=&lt;admin.token&gt;</code></p>
<p>The dashboard passes it on to <code>/status</code>, <code>/metrics</code> and <code>/events</code> itself.
Other clients send <code>Authorization: Bearer &lt;admin.token&gt;</code>.</p>
</body></html>
`);
  }
  res.writeHead(401, { 'www-authenticate': 'Bearer', 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: 'unauthorized', hint: TOKEN_HINT }));
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function json(res: ServerResponse, body: unknown): void {
  jsonStatus(res, 200, body);
}

function jsonStatus(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}
