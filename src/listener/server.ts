/**
 * One listener thread's HTTP server: admission, the built-in endpoints,
 * forwarding, and the drain steps the lifecycle asks for.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../log.ts';
import type { Config } from '../config/schema.ts';
import { InFlight } from '../pool/balancers/in-flight.ts';
import type { BindResult, ListenerStatus, ListenerTls, PassiveReport, PoolSnapshot, TlsApplied } from '../protocol.ts';
import { ConnectionTracker } from './connections.ts';
import { answerEndpoint, endpointFor, readinessChecks, type ReadinessInputs } from './endpoints.ts';
import { AccessLogWriter } from '../access-log/writer.ts';
import { requestIdFrom, type RequestId } from './request-id.ts';
import { accessLine, messageSide } from './access-lines.ts';
import { requestFailure } from './failures.ts';
import type { ProxyView, RequestHooks } from './request-hooks.ts';
import type { ProxyConfig } from './types.ts';
import { UpstreamGroups } from './upstream-groups.ts';
import { Router, type Decision } from './router.ts';
import { ownAnswerBytes, sendOwnAnswer, sendPlain } from './own-answers.ts';
import { joinedHeader, type RequestFacts } from '../routing/route-table.ts';
import { originForm } from '../routing/origin-form.ts';
import { tunnel } from './tunnel.ts';
import { refuseRaw } from './refuse.ts';
import { hasUnsupportedCoding, mustCloseAfter } from './request-framing.ts';
import { isLoop, protoOf } from './headers.ts';
import { serveThroughCore } from './node-path/node-request.ts';
import type { Exchange, FastPathContext } from './http1/exchange.ts';
import { forwarding } from './http1/rewrite.ts';
import { ListeningSockets } from './listening-sockets.ts';
import { ClientConnection, sweepDeadlines, type FrontContext, type PeerSocket } from './http1/client-connection.ts';
import { UpstreamSockets } from './http1/upstream-sockets.ts';
import { readAsStream, readDirectly, readFromStream, replay } from './http1/direct-reads.ts';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { listenSpecs } from '../config/listeners.ts';
import type { ListenerConfig } from '../config/schema.ts';
import { buildContexts, TlsFront, type Contexts } from './tls/tls-front.ts';
import { ListenerMetrics } from '../metrics/listener-metrics.ts';
import { Http2Front, Http2Metrics } from './http2/http2-front.ts';
import { sniffPreface } from './http2/preface.ts';
import { ThreadCache } from '../cache/thread-cache.ts';

export const MAX_HEADER_BYTES = 16 * 1024;

/** What the access log records of a request the proxy answered itself on the Node path. */
interface OwnOutcome {
  error: string | null;
  /** Response body bytes sent to the client. */
  bodyBytes: number;
}

export class ListenerServer {
  #proxy: ProxyConfig;
  readonly #log: Logger;
  readonly #server: Server;
  /** Per listener (listenSpecs order): its listening sockets, and its TLS server if it has one. */
  readonly #specs: ListenerConfig[];
  readonly #sockets: ListeningSockets[];
  readonly #tlsFronts: (TlsFront | undefined)[];
  /** Per listener with `http2`: the HTTP/2 server its h2 connections go to. */
  readonly #http2Fronts: (Http2Front | undefined)[];
  readonly #upstreamSockets = new UpstreamSockets();
  readonly #front: FrontContext;
  #sweeper: NodeJS.Timeout | undefined;
  readonly #connections: ConnectionTracker;
  readonly #groups: UpstreamGroups;
  readonly #router: Router;
  #status: ListenerStatus = { state: 'starting', poolHealthy: false };

  readonly #thread: number;
  readonly #accessLog: AccessLogWriter | undefined;
  /** The shared cache (this thread's handle on its store), when configured. */
  readonly #cache: ThreadCache | undefined;
  /** Each backend's upstream, from the latest snapshot: the `upstream` label of the request metrics. */
  readonly #upstreamOfBackend = new Map<string, string>();
  readonly metrics = new ListenerMetrics((backend) => this.#upstreamOfBackend.get(backend));
  /** The core's context for requests that Node's server parsed: as the fast path's, without the cache. */
  readonly #nodeFront: FastPathContext;
  /** Those requests' exchanges in progress: the sweep checks their upstream deadlines. */
  readonly #nodeExchanges = new Set<Exchange>();
  /** The exchange serving each of those responses: a parser error in the middle of a body is the exchange's to answer. */
  readonly #exchangeOf = new WeakMap<ServerResponse, Exchange>();
  readonly #view: ProxyView = {
    isHealthy: () => this.#status.state === 'healthy',
    hasHealthyBackends: () => readinessChecks(this.#readinessInputs()).backends_available,
    pool: { isHealthy: () => readinessChecks(this.#readinessInputs()).pool_healthy },
    cache: { isHealthy: () => readinessChecks(this.#readinessInputs()).cache_healthy },
  };

  #readinessInputs(): ReadinessInputs {
    const cacheHealthy = this.#cache?.healthy ?? true;
    return { status: this.#status, backendsAvailable: this.#groups.available, cacheHealthy };
  }

  constructor(
    config: Config,
    shared: { connections: SharedArrayBuffer; inFlight: SharedArrayBuffer; thread?: number },
    log: Logger,
    onPassive: (report: PassiveReport) => void,
    hooks?: RequestHooks,
    tls: readonly (ListenerTls | null)[] = [],
  ) {
    const proxy = config.proxy;
    this.#proxy = proxy;
    // How often header deadlines are checked: often enough that a 408 comes at most a quarter late.
    const deadlineCheckMs = Math.min(250, proxy.client_header_timeout_ms / 4);
    this.#log = log;
    this.#thread = shared.thread ?? 0;
    // Each thread appends its own batches to the file (O_APPEND): no request crosses a thread for it.
    this.#accessLog = config.access_log ? new AccessLogWriter(config.access_log) : undefined;
    this.#cache = config.cache ? new ThreadCache(config.cache, log) : undefined;
    if (this.#cache) this.#cache.upstreamTimeoutMs = proxy.upstream_timeout_ms;
    this.#connections = new ConnectionTracker(shared.connections, proxy.max_connections);
    const inFlight = new InFlight(shared.inFlight, shared.thread);
    inFlight.resetOwn();
    this.#groups = new UpstreamGroups(config, inFlight, onPassive);
    this.#router = new Router(config, this.#groups);
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
    // Every connection is admitted here, then served by the fast path, or by Node's HTTP
    // server (request hooks need its objects; the fast path also hands connections over).
    const serveWithNode = this.#server.listeners('connection')[0] as (socket: Socket) => void;
    this.#server.removeAllListeners('connection');
    // Request hooks run on the fast path too: only what it hands off meets Node's server.
    const fastPath = proxy.fast_path;
    this.#front = {
      isDraining: () => this.#draining,
      onUpstreamError: (failure) =>
        this.#log.warn(
          { event: 'upstream.failed', ...failure, source: requestFailure(failure.code).source },
          'upstream error',
        ),
      sockets: this.#upstreamSockets,
      proxy: () => this.#proxy,
      router: this.#router,
      requestIdHeader: () => this.#proxy.request_id_header,
      hooks,
      cache: this.#cache,
      view: this.#view,
      logRefusal: (socket, status, req, code) => this.#logRefusal(socket, status, req, code),
      onHookError: (hook, path, error) =>
        this.#log.error({ code: 'SLUICE_HOOK_FAILED', hook, path, err: error }, `request hook ${hook} failed`),
      accessLog: this.#accessLog,
      thread: this.#thread,
      observe: (status, backend, seconds) => this.metrics.observe(status, backend, seconds),
      maxHeadBytes: MAX_HEADER_BYTES,
      handOff: (socket) => serveWithNode.call(this.#server, socket),
      connections: new Set(),
    };
    this.#nodeFront = { ...this.#front, cache: undefined };
    // The core's deadlines are checked as often as Node checks its own.
    this.#sweeper = setInterval(
      () => sweepDeadlines(this.#front.connections, this.#nodeExchanges, this.#upstreamSockets),
      deadlineCheckMs,
    ).unref();
    // Accepted sockets must not start reading before the fast path moves them to a socket that reads directly.
    (this.#server as Server & { pauseOnConnect?: boolean }).pauseOnConnect = fastPath;
    this.#server.on('connection', (accepted: Socket) => {
      const socket = fastPath ? readDirectly(accepted) : accepted;
      if (!this.#connections.admit(socket)) return;
      if (fastPath) new ClientConnection(socket, this.#front);
      else serveWithNode.call(this.#server, socket);
    });
    // A TLS connection is admitted as its TCP connection is accepted (a handshake counts toward
    // max_connections and holds a drain), then served as a plain one once decrypted.
    const serveTls = (socket: TLSSocket) => {
      if (fastPath) new ClientConnection(readFromStream(socket), this.#front, 'https');
      else serveWithNode.call(this.#server, socket);
    };
    this.#specs = listenSpecs(config);
    this.#http2Fronts = this.#http2FrontsFor(this.#specs);
    // Set in the map below, which the type's narrowing does not follow.
    let httpListens = false as boolean;
    this.#tlsFronts = this.#specs.map((spec, index) => {
      if (!spec.tls) return undefined;
      const material = tls[index];
      if (!material) throw new Error(`listener ${index} has tls but no certificates were given`);
      const h2 = this.#http2Fronts[index];
      // ALPN chose h2 only where the listener offers it.
      const serve = h2
        ? (socket: TLSSocket) => (socket.alpnProtocol === 'h2' ? h2.serve(socket) : serveTls(socket))
        : serveTls;
      const admit = (raw: Socket) => void this.#connections.admit(raw);
      return new TlsFront(material, proxy.client_header_timeout_ms, admit, serve, h2 ? ['h2', 'http/1.1'] : undefined);
    });
    this.#sockets = this.#specs.map((_, index) => {
      const front = this.#tlsFronts[index];
      if (front) return new ListeningSockets(front.server);
      const h2 = this.#http2Fronts[index];
      if (h2) return new ListeningSockets(this.#h2cRelay(h2, serveWithNode));
      if (!httpListens) return ((httpListens = true), new ListeningSockets(this.#server));
      // Another plain listener: its connections go to the same HTTP server, as the first one's.
      const relay = createNetServer({ pauseOnConnect: fastPath }, (socket) => this.#server.emit('connection', socket));
      return new ListeningSockets(relay);
    });
    // Node's server starts tracking its connections (header timeouts, closeIdleConnections) when it
    // listens; with TLS listeners only it never does, yet serves their decrypted sockets.
    if (!httpListens) this.#server.emit('listening');
    this.#server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => {
      if (this.#draining && !this.#sockets.some((sockets) => sockets.listening)) return void socket.destroy();
      const decision = this.#router.decide(this.#router.routing ? nodeRequestFacts(req) : undefined);
      // The proxy's own answer, as any request gets it; the connection ends after it (nothing to tunnel).
      if (decision.kind === 'answer') {
        this.#front.logRefusal(socket as PeerSocket, decision.answer.status, req, decision.answer.code);
        return void socket.end(ownAnswerBytes(decision.answer, true, false));
      }
      const requestId = this.#requestId(req);
      const startedAt = performance.now();
      const time = Date.now();
      tunnel(req, socket, head, decision.upstreams, {
        route: decision.route,
        requestId,
        connectTimeoutMs: this.#proxy.upstream_connect_timeout_ms,
        onError: (backend, code) =>
          this.#log.warn(
            {
              event: 'upstream.failed',
              backend,
              code,
              source: requestFailure(code).source,
              upgrade: req.headers.upgrade,
            },
            'upstream error',
          ),
        onEnd: (outcome) =>
          this.#accessLog?.write(
            accessLine(time, this.#thread, messageSide(req, req.socket.remoteAddress), {
              status: outcome.status,
              bytes_sent: outcome.bytesSent,
              duration_ms: performance.now() - startedAt,
              route: decision.route?.name ?? null,
              upstream: decision.upstreams.name,
              backend: outcome.backend,
              upstream_status: outcome.upstreamStatus,
              attempts: outcome.attempts,
              error: outcome.error,
              request_id: requestId?.value ?? null,
            }),
          ),
      });
    });
    this.#server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
      // The client reset the connection: nothing to answer, and the request it cut short, if any, has
      // its own line from the core (499).
      if (error.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
      // A body that cannot be whole (the client half-closed in it, its chunks broke): the request is the
      // core's, which answers and logs it as the fast path does (400 INVALID_REQUEST_BODY), once.
      const inProgress = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
      const exchange = inProgress ? this.#exchangeOf.get(inProgress) : undefined;
      if (exchange) {
        if (exchange.done) socket.end();
        else exchange.clientBodyInvalid();
        return;
      }
      // Node's parser refused the request, or its headers came too slowly: answer, never forward.
      const [status, reason] = clientErrorStatus(error.code);
      this.#front.logRefusal(
        socket as PeerSocket,
        status,
        undefined,
        status === 408 ? 'CLIENT_HEADER_TIMEOUT' : 'INVALID_REQUEST',
      );
      refuseRaw(socket, status, reason);
    });
  }

  /**
   * Bind each listener's port now; or, in a hot restart's successor (its
   * `inheritedFds` set, possibly empty), accept on the inherited sockets or
   * bind once healthy.
   */
  async bind(ports: readonly number[], inheritedFds?: readonly (readonly number[] | null)[]): Promise<BindResult> {
    const bound: number[] = [];
    for (const [index, spec] of this.#specs.entries()) {
      const port = ports[index] ?? spec.port;
      const fds = inheritedFds?.[index];
      const sockets = this.#sockets[index]!;
      const result = fds ? sockets.defer({ fds, host: spec.host, port }) : await sockets.bind(spec.host, port);
      if (!result.ok) {
        for (const other of this.#sockets) other.close();
        return result;
      }
      bound.push(result.port);
    }
    return { ok: true, ports: bound };
  }

  /** Each listener's listening descriptors, for a hot restart's successor to inherit. */
  listeningFds(): number[][] {
    return this.#sockets.map((sockets) => sockets.fds());
  }

  /**
   * New certificates for the TLS listeners, all built before any is used:
   * one that OpenSSL refuses leaves every listener with the certificates it has.
   */
  #applyCertificates(tls: readonly (ListenerTls | null)[]): TlsApplied {
    const built: [TlsFront, Contexts][] = [];
    for (const [index, front] of this.#tlsFronts.entries()) {
      const material = tls[index];
      if (!front || !material) continue;
      try {
        built.push([front, buildContexts(material)]);
      } catch (error) {
        const message = `listener ${this.#specs[index]!.host}:${this.#specs[index]!.port}: ${(error as Error).message}`;
        return { ok: false, failure: { code: 'SLUICE_TLS_CERTIFICATE', message } };
      }
    }
    for (const [front, contexts] of built) front.apply(contexts);
    return { ok: true };
  }

  /** A reload: what can change without rebinding (the listen addresses and thread count cannot). */
  reconfigure(config: Config, tls: readonly (ListenerTls | null)[] = []): TlsApplied {
    // Refused certificates leave the old ones in place; the rest of the reload still applies.
    const applied = this.#applyCertificates(tls);
    this.#proxy = config.proxy;
    this.#connections.limit = config.proxy.max_connections;
    this.#server.headersTimeout = config.proxy.client_header_timeout_ms;
    this.#server.keepAliveTimeout = config.proxy.client_keepalive_timeout_ms;
    this.#groups.reconfigure(config);
    clearTimeout(this.#routeSwap);
    // The new routes wait for their upstreams' first healthy backend, no longer than a start-up may take.
    if (this.#router.reconfigure(config)) {
      this.#routeSwap = setTimeout(() => this.#router.force(), config.proxy.startup_timeout_ms).unref();
    }
    return applied;
  }

  #routeSwap: NodeJS.Timeout | undefined;

  applySnapshot(snapshot: PoolSnapshot): number {
    const version = this.#groups.apply(snapshot);
    if (this.#router.settle()) clearTimeout(this.#routeSwap);
    for (const b of snapshot.backends) this.#upstreamOfBackend.set(b.id, b.upstream);
    this.#upstreamSockets.keepOnly(new Set(snapshot.backends.map((b) => b.id)));
    this.#log.debug(
      { event: 'snapshot.applied', version, selectable: this.#groups.selectableCount, total: this.#groups.totalCount },
      'snapshot applied',
    );
    return version;
  }

  setStatus(status: ListenerStatus): void {
    const wasDraining = this.#draining;
    this.#status = status;
    // HTTP/2 clients are told at once (GOAWAY 2^31-1): they stop opening streams before the sockets close.
    if (this.#draining && !wasDraining) for (const h2 of this.#http2Fronts) h2?.drain();
    if (status.state !== 'healthy') return;
    for (const sockets of this.#sockets) {
      if (!sockets.waitingToAccept) continue;
      void sockets.acceptDeferred().then((errors) => {
        if (errors.length > 0) this.#log.error({ errors }, 'cannot accept on the sockets handed over');
        else this.#log.debug('accepting on the sockets handed over');
      });
    }
  }

  /** From the phase message: draining from `draining` on, every response says `Connection: close`. */
  get #draining(): boolean {
    return this.#status.state === 'draining' || this.#status.state === 'stopped';
  }

  /** An HTTP/2 server for each listener with `http2`; its counters only where one exists. */
  #http2FrontsFor(specs: readonly ListenerConfig[]): (Http2Front | undefined)[] {
    if (!specs.some((spec) => spec.http2)) return specs.map(() => undefined);
    const metrics = new Http2Metrics();
    this.metrics.countHttp2(metrics);
    const timeouts = () => ({
      headerMs: this.#proxy.client_header_timeout_ms,
      idleMs: this.#proxy.client_keepalive_timeout_ms,
    });
    return specs.map((spec) =>
      spec.http2
        ? new Http2Front(
            { maxConcurrentStreams: spec.max_concurrent_streams, maxHeaderListBytes: MAX_HEADER_BYTES, timeouts },
            metrics,
            (req, res) => this.#handle(req, res),
          )
        : undefined,
    );
  }

  /**
   * A plain listener with `http2`: its own net server, whose connections
   * are admitted, then sorted by their first bytes (preface.ts): HTTP/2 to
   * `h2`, HTTP/1.1 to the fast path or Node's server, as on any plain port.
   */
  #h2cRelay(h2: Http2Front, serveWithNode: (socket: Socket) => void) {
    return createNetServer({ pauseOnConnect: true }, (accepted) => {
      const socket = readDirectly(accepted);
      if (!this.#connections.admit(socket)) return;
      sniffPreface(socket, this.#proxy.client_header_timeout_ms, (verdict, head) => {
        if (verdict === 'http1' && this.#proxy.fast_path) {
          new ClientConnection(socket, this.#front);
          return replay(socket, head);
        }
        readAsStream(socket);
        socket.unshift(head);
        if (verdict === 'h2') return h2.serve(socket);
        // Node's server would read the handle directly, past the bytes put back: make it read the stream.
        (socket as unknown as { _handle: { _consumed?: boolean } })._handle._consumed = true;
        serveWithNode.call(this.#server, socket);
      });
    });
  }

  /** Stop accepting and close idle keep-alive connections; `onDrained` fires when none is left. */
  closeListening(onDrained: () => void): void {
    for (const sockets of this.#sockets) sockets.close();
    for (const h2 of this.#http2Fronts) h2?.drain();
    this.#server.closeIdleConnections();
    for (const connection of this.#front.connections) if (connection.closableByDrain) connection.destroy();
    this.#connections.whenEmpty(onDrained);
  }

  forceClose(): number {
    return this.#connections.destroyAll();
  }

  /** SIGUSR1 (logrotate moved the files): the access log is opened again at its path. */
  reopenAccessLog(): void {
    this.#accessLog?.reopen();
  }

  /** Writes the access-log lines still batched: a thread that ends loses none. */
  flushAccessLog(): void {
    this.#accessLog?.flush();
  }

  async stop(): Promise<void> {
    this.#accessLog?.close();
    for (const sockets of this.#sockets) sockets.close();
    clearInterval(this.#sweeper);
    this.#connections.destroyAll();
    this.#upstreamSockets.closeAll();
    await this.#cache?.close();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    if (mustCloseAfter(req)) res.shouldKeepAlive = false;
    if (this.#draining) {
      // Responses whose head went out before the drain began still said keep-alive:
      // end those connections once their response is complete.
      res.once('finish', () => req.socket.end());
    }
    const startedAt = performance.now();
    const id = this.#requestId(req);
    // Set before any writeHead: the proxy's own answers and forwarded responses all carry it.
    if (id) res.setHeader(id.header, id.value);
    const outcome: OwnOutcome = { error: null, bodyBytes: 0 };
    if (hasUnsupportedCoding(req)) {
      if (this.#accessLog) this.#logWhenClosed(req, res, startedAt, undefined, outcome, id);
      outcome.error = 'UNSUPPORTED_TRANSFER_CODING';
      outcome.bodyBytes = 'Not Implemented\n'.length;
      sendPlain(res, 501, 'Not Implemented', {}, true);
      return;
    }
    const endpoint = endpointFor(req.url ?? '/', this.#proxy);
    if (endpoint) {
      if (this.#accessLog) this.#logWhenClosed(req, res, startedAt, undefined, outcome, id);
      return this.#answerEndpoint(endpoint, req, res, outcome);
    }
    const decision = this.#router.decide(this.#router.routing ? nodeRequestFacts(req) : undefined);
    if (decision.kind === 'answer') {
      if (this.#accessLog) this.#logWhenClosed(req, res, startedAt, decision, outcome, id);
      outcome.error = decision.answer.code;
      outcome.bodyBytes = req.method === 'HEAD' ? 0 : Buffer.byteLength(decision.answer.body);
      sendOwnAnswer(res, decision.answer, this.#draining || decision.answer.status === 503);
      return this.metrics.observe(res.statusCode, undefined, (performance.now() - startedAt) / 1000);
    }
    if (isLoop(req.rawHeaders))
      return this.#answerPlain(req, res, startedAt, decision, outcome, id, 508, 'LOOP_DETECTED');
    // Caching routes are served from the cache on the fast path only; what Node's server gets bypasses it.
    if (this.#cache && (decision.route === undefined || decision.route.cache)) {
      res.setHeader('cache-status', 'sluice; fwd=bypass');
      this.#cache.count('bypass');
    }
    const served = serveThroughCore(this.#nodeFront, req, res, {
      decision,
      forwarding: forwarding(req.socket.remoteAddress ?? '', protoOf(req.socket)),
      id,
      request: messageSide(req, req.socket.remoteAddress),
      close: !res.shouldKeepAlive || this.#draining,
      maxHeadBytes: MAX_HEADER_BYTES,
      inProgress: this.#nodeExchanges,
    });
    // No canonical head: several Host fields, no Host to give, an asterisk-form target.
    if (!served) this.#answerPlain(req, res, startedAt, decision, outcome, id, 400, 'INVALID_REQUEST');
    else this.#exchangeOf.set(res, served);
  }

  /** A plain-text answer of the proxy's own on the Node path, logged and counted. */
  #answerPlain(
    req: IncomingMessage,
    res: ServerResponse,
    startedAt: number,
    decision: Decision,
    outcome: OwnOutcome,
    id: RequestId | undefined,
    status: 400 | 508,
    code: string,
  ): void {
    if (this.#accessLog) this.#logWhenClosed(req, res, startedAt, decision, outcome, id);
    const text = status === 400 ? 'Bad Request' : 'Loop Detected';
    outcome.error = code;
    outcome.bodyBytes = req.method === 'HEAD' ? 0 : text.length + 1;
    sendPlain(res, status, text, {}, status === 400 || this.#draining);
    this.metrics.observe(status, undefined, (performance.now() - startedAt) / 1000);
  }

  /**
   * A request answered before it reached the core: refused by a parser
   * (400, 408, 431: what it asked is unknown, logged as `-`), or an upgrade
   * the proxy answered itself.
   */
  #logRefusal(socket: PeerSocket, status: number, req?: IncomingMessage, code: string | null = null): void {
    const accessLog = this.#accessLog;
    if (!accessLog) return;
    accessLog.write(
      accessLine(Date.now(), this.#thread, messageSide(req, socket.remoteAddress), {
        status,
        bytes_sent: 0,
        duration_ms: 0,
        route: null,
        upstream: null,
        backend: null,
        upstream_status: null,
        attempts: 0,
        error: code ?? (req ? null : 'INVALID_REQUEST'),
        request_id: null,
      }),
    );
  }

  /** One access-log line when the response ends or the client goes: the Node path's record. */
  #logWhenClosed(
    req: IncomingMessage,
    res: ServerResponse,
    startedAt: number,
    decision: Decision | undefined,
    outcome: OwnOutcome,
    id: RequestId | undefined,
  ): void {
    const time = Date.now();
    res.once('close', () => {
      this.#accessLog?.write(
        accessLine(time, this.#thread, messageSide(req, req.socket.remoteAddress), {
          // nginx's 499: the client went away before any response went out.
          status: res.headersSent ? res.statusCode : 499,
          bytes_sent: outcome.bodyBytes,
          duration_ms: performance.now() - startedAt,
          route: decision?.route?.name ?? null,
          upstream: decision?.upstreams?.name ?? null,
          backend: null,
          upstream_status: null,
          attempts: 0,
          // 'close' before 'finish': the client went away first.
          error: res.writableFinished ? outcome.error : (outcome.error ?? 'CLIENT_ABORTED'),
          request_id: id?.value ?? null,
        }),
      );
    });
  }

  /** The request's id (`proxy.request_id_header`) on the Node path: the client's, or a new one. */
  #requestId(req: IncomingMessage): RequestId | undefined {
    const header = this.#proxy.request_id_header;
    if (header === null) return undefined;
    const sent = req.headers[header];
    return requestIdFrom(header, typeof sent === 'string' ? sent : sent?.[0]);
  }

  #answerEndpoint(
    name: 'health' | 'ready' | 'live',
    req: IncomingMessage,
    res: ServerResponse,
    outcome: OwnOutcome,
  ): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendPlain(res, 405, 'Method Not Allowed', { allow: 'GET, HEAD' }, this.#draining);
    }
    const answer = answerEndpoint(name, this.#readinessInputs());
    const body = JSON.stringify(answer.body);
    outcome.bodyBytes = req.method === 'HEAD' ? 0 : Buffer.byteLength(body);
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
    target: originForm(req.url ?? '/'),
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
