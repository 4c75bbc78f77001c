/**
 * One listener thread's HTTP server: admission, the built-in endpoints,
 * forwarding, and the drain steps the lifecycle asks for.
 */
import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../log.ts';
import type { Config } from '../config/schema.ts';
import { InFlight } from '../pool/balancers/in-flight.ts';
import type { BindResult, ListenerStatus, PassiveReport, PoolSnapshot } from '../protocol.ts';
import { ConnectionTracker } from './connections.ts';
import { answerEndpoint, endpointFor, readinessChecks, type ReadinessInputs } from './endpoints.ts';
import { forward, sendPlain, type ForwardBase, type ForwardHooks } from './forward.ts';
import { fromHeaderMap, newSession, toHeaderMap, type ProxyView, type RequestHooks, type Session } from './request-hooks.ts';
import type { ProxyConfig } from './types.ts';
import { UpstreamGroups } from './upstream-groups.ts';
import { Router, type Decision } from './router.ts';
import { sendOwnAnswer } from './own-answers.ts';
import { joinedHeader, type RequestFacts } from '../routing/route-table.ts';
import { tunnel } from './tunnel.ts';
import { refuseRaw } from './refuse.ts';
import { hasUnsupportedCoding, mustCloseAfter } from './request-framing.ts';
import { ListeningSockets } from './listening-sockets.ts';
import { ClientConnection, sweepDeadlines, type FrontContext } from './http1/client-connection.ts';
import { UpstreamSockets } from './http1/upstream-sockets.ts';
import { readDirectly } from './http1/direct-reads.ts';
import type { Socket } from 'node:net';
import { ListenerMetrics } from '../metrics/listener-metrics.ts';

export const MAX_HEADER_BYTES = 16 * 1024;

export class ListenerServer {
  #proxy: ProxyConfig;
  readonly #log: Logger;
  readonly #server: Server;
  readonly #sockets: ListeningSockets;
  readonly #upstreamSockets = new UpstreamSockets();
  readonly #front: FrontContext;
  #sweeper: NodeJS.Timeout | undefined;
  readonly #connections: ConnectionTracker;
  readonly #groups: UpstreamGroups;
  readonly #router: Router;
  #status: ListenerStatus = { state: 'starting', poolHealthy: false };
  #draining = false;

  readonly #hooks: RequestHooks | undefined;
  readonly metrics = new ListenerMetrics();
  readonly #forwardContext: ForwardBase;
  readonly #view: ProxyView = {
    isHealthy: () => this.#status.state === 'healthy',
    hasHealthyBackends: () => readinessChecks(this.#readinessInputs()).backends_available,
    pool: { isHealthy: () => readinessChecks(this.#readinessInputs()).pool_healthy },
    cache: { isHealthy: () => readinessChecks(this.#readinessInputs()).cache_healthy },
  };

  #readinessInputs(): ReadinessInputs {
    return { status: this.#status, backendsAvailable: this.#groups.available };
  }

  constructor(
    config: Config,
    shared: { connections: SharedArrayBuffer; inFlight: SharedArrayBuffer; thread?: number },
    log: Logger,
    onPassive: (report: PassiveReport) => void,
    hooks?: RequestHooks,
  ) {
    const proxy = config.proxy;
    this.#proxy = proxy;
    // How often header deadlines are checked: often enough that a 408 comes at most a quarter late.
    const deadlineCheckMs = Math.min(250, proxy.client_header_timeout_ms / 4);
    this.#log = log;
    this.#connections = new ConnectionTracker(shared.connections, proxy.max_connections);
    const inFlight = new InFlight(shared.inFlight, shared.thread);
    inFlight.resetOwn();
    this.#groups = new UpstreamGroups(config, inFlight, onPassive);
    this.#router = new Router(config, this.#groups);
    this.#hooks = hooks;
    this.#forwardContext = {
      isDraining: () => this.#draining,
      onUpstreamError: ({ backend, code }) => this.#log.warn({ backend, code }, 'upstream error'),
    };
    this.#server = createServer(
      {
        maxHeaderSize: MAX_HEADER_BYTES,
        headersTimeout: proxy.client_header_timeout_ms,
        keepAliveTimeout: proxy.client_keepalive_timeout_ms,
        // The whole request (headers and body) may take longer than its headers: uploads.
        requestTimeout: Math.max(300_000, proxy.client_header_timeout_ms + 1),
        // Node checks the header deadline on this interval (default 30 s, far too late
        // against slowloris); keepAliveTimeout already runs on a per-socket timer.
        connectionsCheckingInterval: deadlineCheckMs,
      },
      (req, res) => this.#handle(req, res),
    );
    // A client may half-close once its request is sent (`nc -N`, some load balancers' health
    // checks). Node's default aborts the request at that FIN; nginx answers it. So do we.
    (this.#server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    this.#sockets = new ListeningSockets(this.#server);
    // Every connection is admitted here, then served by the fast path, or by Node's HTTP
    // server (request hooks need its objects; the fast path also hands connections over).
    const serveWithNode = this.#server.listeners('connection')[0] as (socket: Socket) => void;
    this.#server.removeAllListeners('connection');
    const fastPath = !hooks && proxy.fast_path;
    this.#front = {
      ...this.#forwardContext,
      sockets: this.#upstreamSockets,
      proxy: () => this.#proxy,
      router: this.#router,
      observe: (status, backend, seconds) => this.metrics.observe(status, backend, seconds),
      maxHeadBytes: MAX_HEADER_BYTES,
      handOff: (socket) => serveWithNode.call(this.#server, socket),
      connections: new Set(),
    };
    // The fast path's deadlines are checked as often as Node checks its own.
    if (fastPath) this.#sweeper = setInterval(() => sweepDeadlines(this.#front.connections, this.#upstreamSockets), deadlineCheckMs).unref();
    // Accepted sockets must not start reading before the fast path moves them to a socket that reads directly.
    (this.#server as Server & { pauseOnConnect?: boolean }).pauseOnConnect = fastPath;
    this.#server.on('connection', (accepted: Socket) => {
      const socket = fastPath ? readDirectly(accepted) : accepted;
      if (!this.#connections.admit(socket)) return;
      if (fastPath) new ClientConnection(socket, this.#front);
      else serveWithNode.call(this.#server, socket);
    });
    this.#server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => {
      if (this.#draining && !this.#sockets.listening) return void socket.destroy();
      const decision = this.#router.decide(this.#router.routing ? nodeRequestFacts(req) : undefined);
      if (decision.kind === 'answer') return refuseRaw(socket, decision.answer.status, STATUS_CODES[decision.answer.status] ?? 'Error');
      tunnel(req, socket, head, decision.upstreams, decision.route, this.#proxy.upstream_connect_timeout_ms, (backend, code) =>
        this.#log.warn({ backend, code, upgrade: req.headers.upgrade }, 'upstream error'),
      );
    });
    this.#server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
      // Node's parser refused the request, or its headers came too slowly: answer, never forward.
      refuseRaw(socket, ...clientErrorStatus(error.code));
    });
  }

  /**
   * Bind the port now; or, in a hot restart's successor (`inheritedFds` set,
   * possibly empty), accept on the inherited sockets or bind once healthy.
   */
  bind(port: number, inheritedFds?: readonly number[]): Promise<BindResult> {
    const host = this.#proxy.listen_host;
    if (inheritedFds) return Promise.resolve(this.#sockets.defer({ fds: inheritedFds, host, port }));
    return this.#sockets.bind(host, port);
  }

  /** The listening sockets' descriptors, for a hot restart's successor to inherit. */
  listeningFds(): number[] {
    return this.#sockets.fds();
  }

  /** A reload: what can change without rebinding (the listen address and thread count cannot). */
  reconfigure(config: Config): void {
    this.#proxy = config.proxy;
    this.#connections.limit = config.proxy.max_connections;
    this.#server.headersTimeout = config.proxy.client_header_timeout_ms;
    this.#server.keepAliveTimeout = config.proxy.client_keepalive_timeout_ms;
    this.#groups.reconfigure(config);
    this.#router.reconfigure(config);
  }

  applySnapshot(snapshot: PoolSnapshot): number {
    const version = this.#groups.apply(snapshot);
    this.#upstreamSockets.keepOnly(new Set(snapshot.backends.map((b) => b.id)));
    this.#log.debug({ version, selectable: this.#groups.selectableCount, total: this.#groups.totalCount }, 'snapshot applied');
    return version;
  }

  setStatus(status: ListenerStatus): void {
    this.#status = status;
    if (status.state === 'healthy' && this.#sockets.waitingToAccept) {
      void this.#sockets.acceptDeferred().then((errors) => {
        if (errors.length > 0) this.#log.error({ errors }, 'cannot accept on the sockets handed over');
        else this.#log.debug('accepting on the sockets handed over');
      });
    }
  }

  beginDrain(): void {
    this.#draining = true;
  }

  /** Stop accepting and close idle keep-alive connections; `onDrained` fires when none is left. */
  closeListening(onDrained: () => void): void {
    this.#draining = true;
    this.#sockets.close();
    this.#server.closeIdleConnections();
    for (const connection of this.#front.connections) if (connection.idle) connection.destroy();
    this.#connections.whenEmpty(onDrained);
  }

  forceClose(): number {
    return this.#connections.destroyAll();
  }

  async stop(): Promise<void> {
    this.#sockets.close();
    clearInterval(this.#sweeper);
    this.#connections.destroyAll();
    this.#upstreamSockets.closeAll();
    await this.#groups.close();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    if (hasUnsupportedCoding(req)) return void sendPlain(res, 501, 'Not Implemented', {}, true);
    if (mustCloseAfter(req)) res.shouldKeepAlive = false;
    if (this.#draining) {
      // Responses whose head went out before the drain began still said keep-alive:
      // end those connections once their response is complete.
      res.once('finish', () => req.socket.end());
    }
    const endpoint = endpointFor(req.url ?? '/', this.#proxy);
    if (endpoint) return this.#answerEndpoint(endpoint, req, res);
    const startedAt = performance.now();
    const decision = this.#router.decide(this.#router.routing ? nodeRequestFacts(req) : undefined);
    if (decision.kind === 'answer') {
      sendOwnAnswer(res, decision.answer, this.#draining || decision.answer.status === 503);
      return this.metrics.observe(res.statusCode, undefined, (performance.now() - startedAt) / 1000);
    }
    const context = { ...this.#forwardContext, upstreams: decision.upstreams, route: decision.route };
    const done = this.#hooks ? this.#handleWithHooks(this.#hooks, req, res, decision) : forward(req, res, context);
    done
      .catch((error: Error) => {
        this.#log.error({ err: error }, 'forwarding failed');
        sendPlain(res, 502, 'Bad Gateway', {}, true);
        return undefined;
      })
      .then((backend) => this.metrics.observe(res.statusCode, backend, (performance.now() - startedAt) / 1000));
  }

  /** The same path as without hooks, with the user's code at each step; a throwing hook costs this request a 500. */
  async #handleWithHooks(
    hooks: RequestHooks,
    req: IncomingMessage,
    res: ServerResponse,
    decision: Extract<Decision, { kind: 'forward' }>,
  ): Promise<string | undefined> {
    const upstreams = decision.upstreams;
    const startedAt = performance.now();
    const bytesBefore = req.socket.bytesWritten;
    const session = newSession(this.#view, req.method ?? 'GET', req.url ?? '/', req.headers, req.socket.remoteAddress ?? '');
    let current = 'onRequestStart';
    // `current` names the step a thrown error belongs to: a hook (500) or forwarding itself (502).
    const call = async <T>(name: keyof RequestHooks, run: () => T | Promise<T>): Promise<T> => {
      const previous = current;
      current = name;
      const result = await run();
      current = previous;
      return result;
    };
    res.once('close', () => {
      if (!hooks.onRequestEnd) return;
      session.status = res.statusCode;
      session.duration_ms = performance.now() - startedAt;
      session.bytes = req.socket.bytesWritten - bytesBefore;
      Promise.resolve()
        .then(() => hooks.onRequestEnd!(session))
        .catch((error: Error) => this.#log.error({ code: 'SLUICE_HOOK_FAILED', hook: 'onRequestEnd', err: error }, 'request hook failed'));
    });
    const forwardHooks: ForwardHooks = {
      onBackend: (backend) => (session.backend = backend.id),
      ...(hooks.upstreamPeer && {
        choosePeer: async () => {
          // Only the route's own upstream: a hook never sends a request to another service's backends.
          const selectable = upstreams.selectable;
          const choice = await call('upstreamPeer', () => hooks.upstreamPeer!(session, selectable.map(({ address, port }) => ({ address, port }))));
          return choice ? selectable.find((b) => b.address === choice.address && b.port === choice.port) : undefined;
        },
      }),
      ...(hooks.upstreamRequestFilter && {
        editRequestHeaders: async (flat) => {
          const map = toHeaderMap(flat);
          await call('upstreamRequestFilter', () => hooks.upstreamRequestFilter!(session, map));
          return fromHeaderMap(map);
        },
      }),
      ...(hooks.responseFilter && {
        editResponseHeaders: async (headers) => {
          await call('responseFilter', () => hooks.responseFilter!(session, headers));
        },
      }),
    };
    try {
      if (hooks.onRequestStart) await call('onRequestStart', () => hooks.onRequestStart!(session));
      const filtered = hooks.requestFilter ? await call('requestFilter', () => hooks.requestFilter!(session)) : undefined;
      if (filtered?.respond) return void this.#respondFromHook(session, filtered.respond, res);
      current = 'forward';
      return await forward(req, res, { ...this.#forwardContext, upstreams, route: decision.route, hooks: forwardHooks });
    } catch (error) {
      if (current === 'forward') throw error;
      this.#log.error({ code: 'SLUICE_HOOK_FAILED', hook: current, path: session.path, err: error }, `request hook ${current} failed`);
      sendPlain(res, 500, 'Internal Server Error', {}, this.#draining);
      return undefined;
    }
  }

  #respondFromHook(session: Session, respond: { status: number; headers?: Record<string, string>; body?: string }, res: ServerResponse): void {
    const body = respond.body ?? '';
    res.writeHead(respond.status, {
      'content-length': Buffer.byteLength(body),
      ...respond.headers,
      ...(this.#draining && { connection: 'close' }),
    });
    res.end(session.method === 'HEAD' ? undefined : body);
  }

  #answerEndpoint(name: 'health' | 'ready' | 'live', req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendPlain(res, 405, 'Method Not Allowed', { allow: 'GET, HEAD' }, this.#draining);
    }
    const answer = answerEndpoint(name, this.#readinessInputs());
    const body = JSON.stringify(answer.body);
    res.writeHead(answer.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      ...(this.#draining && { connection: 'close' }),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

/** What routing reads of a request on the Node path. */
function nodeRequestFacts(req: IncomingMessage): RequestFacts {
  return {
    method: req.method ?? 'GET',
    target: req.url ?? '/',
    host: req.headers.host,
    header: (name) => joinedHeader(req.rawHeaders, name),
  };
}

function clientErrorStatus(code: string | undefined): [number, string] {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'Request Header Fields Too Large'];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'Request Timeout'];
    default:
      return [400, 'Bad Request'];
  }
}
