/**
 * One HTTP/2 listener of a listener thread: a Node `Http2Server` that never
 * listens itself. Its connections come from the listener's own sockets —
 * TLS ones whose ALPN chose `h2`, plain ones that opened with the h2c
 * preface — by `emit('connection')`, after admission counted them like any
 * other connection (max_connections, drain, force-close).
 *
 *   accepted socket ─┬─ TLS, ALPN h2 ─────────────┐
 *                    └─ plain, preface PRI * ... ─┴─> Http2Server ─> stream ─> core (#handle)
 *
 * Each stream is one request through the same core as HTTP/1.1, through
 * Node's compatibility objects (h1-view.ts). Upstreams stay HTTP/1.1.
 */
import { constants, createServer, type Http2Server, type ServerHttp2Session } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { H1ViewRequest, H1ViewResponse } from './h1-view.ts';
import { SessionWatch, type SessionTimeouts } from './session-watch.ts';

export interface Http2Options {
  maxConcurrentStreams: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE, and what nghttp2 enforces (a stream error past it). */
  maxHeaderListBytes: number;
  timeouts: () => SessionTimeouts;
}

/** The counters of every HTTP/2 listener of a thread, in its registry (summed across threads at scrape). */
/** This thread's HTTP/2 counts; listener-metrics.ts exports them at a scrape (prom-client is loaded only then). */
export class Http2Metrics {
  sessions = 0;
  rapidReset = 0;
}

export class Http2Front {
  readonly #server: Http2Server;
  readonly #watches = new Set<SessionWatch>();
  readonly #metrics: Http2Metrics;
  #draining = false;
  /** The socket being handed over, for the 'session' event that Node emits synchronously for it. */
  #incoming: Socket | undefined;

  constructor(
    options: Http2Options,
    metrics: Http2Metrics,
    handle: (req: IncomingMessage, res: ServerResponse) => void,
  ) {
    this.#metrics = metrics;
    this.#server = createServer(
      {
        settings: {
          maxConcurrentStreams: options.maxConcurrentStreams,
          maxHeaderListSize: options.maxHeaderListBytes,
          enablePush: false,
        },
        Http2ServerRequest: H1ViewRequest,
        Http2ServerResponse: H1ViewResponse,
      },
      (req, res) => {
        const watch = this.#watchOf(req.stream.session as ServerHttp2Session | undefined);
        if (watch?.refuses(req.stream)) return;
        handle(req as unknown as IncomingMessage, res as unknown as ServerResponse);
      },
    );
    this.#server.on('session', (session: ServerHttp2Session) => {
      const socket = this.#incoming;
      this.#incoming = undefined;
      // serve() emits 'connection' and Node makes the session inside that call: a session without it is none of ours.
      if (!socket) return session.destroy();
      metrics.sessions++;
      const watch = new SessionWatch(session, socket, options.timeouts, {
        onRapidReset: () => {
          this.#metrics.rapidReset++;
        },
      });
      sessionWatches.set(session, watch);
      this.#watches.add(watch);
      session.once('close', () => this.#watches.delete(watch));
      // A connection that arrives while draining is told at once.
      if (this.#draining) watch.drain();
    });
    this.#server.on('sessionError', endsOnlyThatSession);
  }

  #watchOf(session: ServerHttp2Session | undefined): SessionWatch | undefined {
    return session ? sessionWatches.get(session) : undefined;
  }

  /** Serves `socket` (admitted, TLS already done, or plain with the preface's bytes unshifted) as HTTP/2. */
  serve(socket: Socket): void {
    this.#incoming = socket;
    this.#server.emit('connection', socket);
  }

  /** The drain's GOAWAY sequence on every connection, idle ones included. */
  drain(): void {
    this.#draining = true;
    for (const watch of this.#watches) watch.drain();
  }

  get connections(): number {
    return this.#watches.size;
  }
}

const sessionWatches = new WeakMap<ServerHttp2Session, SessionWatch>();

export const { NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM } = constants;

function endsOnlyThatSession(): void {
  // Stream and session errors (a reset, a protocol error) end that stream or connection; nothing to report.
}
