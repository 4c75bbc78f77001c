/**
 * One client connection on the fast path: read a request head, run its
 * exchange, then the next request (keep-alive and pipelining, one request at
 * a time). A request the strict parser does not take — malformed, or using
 * what only the Node path does (Expect, Upgrade, other codings, the
 * proxy's own endpoints, a loop, an empty backend set) — hands the whole
 * connection to Node's HTTP server with the bytes read so far put back:
 * from then on it is served exactly as before the fast path existed.
 *
 * Deadlines, as on the Node path: the request head must be complete within
 * `client_header_timeout_ms` (408 otherwise); an idle keep-alive connection
 * closes after `client_keepalive_timeout_ms`. A connection only records its
 * deadline (a number); `sweepDeadlines`, run on one interval for all of a
 * thread's connections, enforces them, and the upstream deadlines of the
 * requests in progress and of idle upstream connections too: a timer armed
 * and cleared per request showed in the profile.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
// Imported: the global `performance` is an accessor Node defines on globalThis, called on every read.
import { performance } from 'node:perf_hooks';
import { endpointFor } from '../endpoints.ts';
import { isLoop } from '../headers.ts';
import { refuseRaw } from '../refuse.ts';
import { Exchange, type ExchangeEnd, type FastPathContext } from './exchange.ts';
import { parseRequestHead, type RequestHead } from './request-head.ts';
import { ownAnswerBytes } from '../own-answers.ts';
import type { Decision, Router } from '../router.ts';
import { idLine, requestIdFrom } from '../request-id.ts';
import { accessLine, headSide } from '../access-lines.ts';
import type { RequestFacts } from '../../routing/route-table.ts';
import { ChunkedScanner } from './chunked.ts';
import { keep, readAsStream, setReader } from './direct-reads.ts';
import { forwarding, type Forwarding } from './rewrite.ts';
import type { UpstreamSockets } from './upstream-sockets.ts';

/**
 * After sluice ends its side, how long the client has to close its own before
 * the socket is destroyed (nginx's lingering_timeout): a client that keeps a
 * half-closed connection open must not hold a drain.
 */
const LINGER_MS = 5_000;

/** Pipelined bytes held while a response is being sent, before the client is paused. */
const MAX_PIPELINED_BYTES = 64 * 1024;

/** What a refusal's log line reads of the connection: Node types the sockets of 'upgrade' and 'clientError' as Duplex. */
export interface PeerSocket {
  readonly remoteAddress?: string | undefined;
}

export interface FrontContext extends FastPathContext {
  maxHeadBytes: number;
  router: Router;
  /** An access-log line for a request answered before it reached the core (parser refusals, answered upgrades). */
  logRefusal(socket: PeerSocket, status: number, req?: IncomingMessage, code?: string | null): void;
  /** Give the connection to Node's HTTP server (the bytes read were put back on it). */
  handOff(socket: Socket): void;
  /** The fast connections of this thread, for closing the idle ones when draining. */
  connections: Set<ClientConnection>;
}

export class ClientConnection {
  readonly #socket: Socket;
  readonly #ctx: FrontContext;
  readonly #forwarding: Forwarding;
  #buffer: Buffer | undefined;
  #exchange: Exchange | undefined;
  /** Request body still to come from the client: a byte count (Content-Length), or a chunked body's end to find. */
  #bodyRemaining = 0;
  #bodyScanner: ChunkedScanner | undefined;
  /** performance.now() past which the current wait is over (Infinity: none). */
  #deadline = Infinity;
  #deadlineKind: 'header' | 'keep-alive' | 'linger' | undefined;
  #ended = false;
  /** Our side has ended: whatever the client still sends is read and dropped. */
  #closing = false;
  /** Bytes have come from the client: until then the connection is new, its first request maybe on its way. */
  #received = false;

  /** `proto`: what X-Forwarded-Proto says — `https` for a TLS listener's (stream-fed) sockets. */
  constructor(socket: Socket, ctx: FrontContext, proto: 'http' | 'https' = 'http') {
    this.#socket = socket;
    this.#ctx = ctx;
    this.#forwarding = forwarding(socket.remoteAddress ?? '', proto);
    socket.setNoDelay(true);
    setReader(socket, this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    ctx.connections.add(this);
    this.#wait('header');
  }

  /** Idle (between requests, nothing received): closed by a drain, as Node's closeIdleConnections does. */
  get idle(): boolean {
    return (
      this.#exchange === undefined && !this.#awaitingDrain && (this.#buffer === undefined || this.#buffer.length === 0)
    );
  }

  /**
   * What a drain closes at once: an idle connection that has carried a
   * request. One accepted but silent so far is not closed: its client may
   * have sent its first request already, and closing would reset it
   * unanswered (nginx too closes only keep-alive connections at a graceful
   * stop). It is served, with `Connection: close`, or times out as any head.
   */
  get closableByDrain(): boolean {
    return this.#received && this.idle;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  // A method, not a private getter: V8 calls into its runtime for each private getter read.
  #inBody(): boolean {
    return this.#bodyRemaining > 0 || this.#bodyScanner !== undefined;
  }

  /**
   * Gives the request-body part of `chunk` to the exchange; returns the bytes
   * after the body (the next request), or `invalid` for a broken chunked body.
   */
  #takeBody(chunk: Buffer): Buffer | undefined | 'invalid' {
    let end: number;
    if (this.#bodyScanner) {
      const at = this.#bodyScanner.scan(chunk);
      if (at === -2) {
        this.#bodyScanner = undefined;
        return 'invalid';
      }
      if (at >= 0) this.#bodyScanner = undefined;
      end = at === -1 ? chunk.length : at;
    } else {
      end = Math.min(chunk.length, this.#bodyRemaining);
      this.#bodyRemaining -= end;
    }
    if (end > 0) this.#exchange?.clientBody(keep(end === chunk.length ? chunk : chunk.subarray(0, end)));
    if (!this.#inBody()) this.#exchange?.clientBodyDone();
    return end < chunk.length ? chunk.subarray(end) : undefined;
  }

  /** One read: `bytes` lie in the thread's shared read buffer, so what stays for later is copied (keep). */
  readonly #onData = (bytes: Buffer): void => {
    if (this.#closing) return;
    this.#received = true;
    let chunk = bytes;
    if (this.#inBody()) {
      const rest = this.#takeBody(chunk);
      if (rest === 'invalid') return this.#exchange?.clientBodyInvalid();
      if (!rest) return;
      chunk = rest;
    }
    const pending = this.#buffer ? Buffer.concat([this.#buffer, chunk]) : chunk;
    if (this.#exchange || this.#awaitingDrain) {
      this.#buffer = keep(pending);
      if (this.#buffer.length > MAX_PIPELINED_BYTES) this.#socket.pause();
      return;
    }
    this.#buffer = undefined;
    this.#next(pending);
    // #next may have left bytes in #buffer, which the type still narrows to the undefined set above.
    const left = this.#buffer as Buffer | undefined;
    if (left) this.#buffer = keep(left);
  };

  /**
   * Start the next request from `buffer` (the bytes received and not yet
   * used), if a whole head is there; what is left waits in #buffer. `now`:
   * performance.now(), when the caller has just read it.
   */
  #next(buffer: Buffer | undefined, now?: number): void {
    if (!buffer || buffer.length === 0) {
      this.#buffer = undefined;
      if (this.#ended) return this.#close();
      return this.#wait('keep-alive', now);
    }
    const parsed = parseRequestHead(buffer, this.#ctx.maxHeadBytes);
    if (parsed.kind !== 'ok') this.#buffer = buffer;
    if (parsed.kind === 'incomplete') {
      // Half-closed before its head was whole: nothing more can come (and nothing can be put back).
      if (this.#ended) this.#refuse(400, 'Bad Request');
      // The head's deadline runs from its first bytes (a whole head never needs one).
      else if (this.#deadlineKind !== 'header') this.#wait('header', now);
      return;
    }
    if (parsed.kind === 'handoff') return this.#handOff();
    const head = parsed.head;
    if (endpointFor(head.target, this.#ctx.proxy()) || (head.hasVia && isLoop(head.rawHeaders))) {
      this.#buffer = buffer;
      return this.#handOff();
    }
    const router = this.#ctx.router;
    const decision = router.decide(router.routing ? requestFacts(head) : undefined);
    this.#stopWaiting();
    if (decision.kind === 'answer') return this.#answerOwn(head, buffer, decision, now);
    this.#bodyRemaining = head.contentLength;
    this.#bodyScanner = head.chunked ? new ChunkedScanner() : undefined;
    const exchange = new Exchange(this.#ctx, this.#socket, this.#forwarding, head, decision, this.#onExchangeEnd);
    this.#exchange = exchange;
    // The body bytes that came with the head; the exchange holds them until it has an upstream.
    const rest = buffer.length > head.headLength ? this.#takeBody(buffer.subarray(head.headLength)) : undefined;
    if (rest === 'invalid') return exchange.clientBodyInvalid();
    this.#buffer = rest;
    exchange.start();
  }

  /**
   * The proxy's own answer (a `respond` route, no route, no backend). A body
   * the request carries is not read: the connection closes after the answer,
   * or its bytes would be taken for the next request.
   */
  #answerOwn(
    head: RequestHead,
    buffer: Buffer,
    decision: Extract<Decision, { kind: 'answer' }>,
    now: number | undefined,
  ): void {
    const answer = decision.answer;
    const close =
      head.close || head.contentLength > 0 || head.chunked || this.#ctx.isDraining() || answer.status === 503;
    const startedAt = now ?? performance.now();
    const idHeader = this.#ctx.requestIdHeader();
    const id = idHeader === null ? undefined : requestIdFrom(idHeader, head.find(idHeader));
    this.#socket.write(ownAnswerBytes(answer, close, head.method === 'HEAD', id ? idLine(id) : ''));
    const durationMs = performance.now() - startedAt;
    this.#ctx.observe(answer.status, undefined, durationMs / 1000);
    const accessLog = this.#ctx.accessLog;
    if (accessLog) {
      accessLog.write(
        accessLine(Date.now() - durationMs, this.#ctx.thread, headSide(head, this.#forwarding.clientIp), {
          status: answer.status,
          bytes_sent: head.method === 'HEAD' ? 0 : Buffer.byteLength(answer.body),
          duration_ms: durationMs,
          route: decision.route?.name ?? null,
          upstream: decision.upstreams?.name ?? null,
          backend: null,
          upstream_status: null,
          attempts: 0,
          error: answer.code,
          request_id: id?.value ?? null,
        }),
      );
    }
    if (close) return this.#close();
    const rest = buffer.length > head.headLength ? buffer.subarray(head.headLength) : undefined;
    // A client that pipelines requests and reads no answers must not make the proxy buffer them all:
    // the next request waits until the socket has sent what it holds, as after a proxied response.
    if (this.#socket.writableNeedDrain) {
      this.#buffer = rest && keep(rest);
      this.#awaitingDrain = true;
      this.#socket.pause();
      this.#socket.once('drain', this.#onAnswerDrained);
      return;
    }
    this.#next(rest);
  }

  /** Answers written earlier have gone out: read on. */
  readonly #onAnswerDrained = (): void => {
    this.#awaitingDrain = false;
    if (this.#socket.destroyed) return;
    this.#socket.resume();
    const buffer = this.#buffer;
    this.#buffer = undefined;
    this.#next(buffer);
    // As in #onData: #next may have left bytes in #buffer.
    const left = this.#buffer as Buffer | undefined;
    if (left) this.#buffer = keep(left);
  };

  /** The proxy's own answers wait for the socket to drain (#answerOwn). */
  #awaitingDrain = false;

  readonly #onExchangeEnd: ExchangeEnd = (keepAlive, at) => {
    this.#exchange = undefined;
    // A body the client is still sending would be read as the next request: close instead.
    if (!keepAlive || this.#inBody() || this.#socket.destroyed) return this.#close();
    if (this.#socket.isPaused()) this.#socket.resume();
    const buffer = this.#buffer;
    this.#buffer = undefined;
    this.#next(buffer, at);
  };

  #handOff(): void {
    this.#stopWaiting();
    this.#detach();
    const socket = this.#socket;
    readAsStream(socket);
    if (this.#buffer) socket.unshift(keep(this.#buffer));
    this.#buffer = undefined;
    // Node's server reads the handle directly when it can, past bytes put back on the stream: make it read the stream.
    const handle = (socket as unknown as { _handle?: { _consumed?: boolean } })._handle;
    if (handle) handle._consumed = true;
    this.#ctx.handOff(socket);
  }

  #detach(): void {
    this.#socket.off('end', this.#onEnd);
    this.#socket.off('error', this.#onError);
    this.#socket.off('close', this.#onClose);
    this.#ctx.connections.delete(this);
  }

  /** The client half-closed: answer what it sent, then close (as nginx does). */
  readonly #onEnd = (): void => {
    this.#ended = true;
    // Half-closed in the middle of a request body: the request can never be whole.
    if (this.#inBody()) {
      this.#bodyRemaining = 0;
      this.#bodyScanner = undefined;
      return this.#exchange?.clientBodyInvalid();
    }
    if (this.#exchange || this.#awaitingDrain) return;
    const buffer = this.#buffer;
    this.#buffer = undefined;
    this.#next(buffer);
  };

  readonly #onError = (): void => {
    // A reset or a write after the client left: 'close' follows and cleans up.
  };

  readonly #onClose = (): void => {
    this.#stopWaiting();
    this.#ctx.connections.delete(this);
    this.#exchange?.clientClosed();
    this.#exchange = undefined;
  };

  #wait(kind: 'header' | 'keep-alive' | 'linger', now = performance.now()): void {
    const proxy = this.#ctx.proxy();
    this.#deadlineKind = kind;
    const ms =
      kind === 'header'
        ? proxy.client_header_timeout_ms
        : kind === 'keep-alive'
          ? proxy.client_keepalive_timeout_ms
          : LINGER_MS;
    this.#deadline = now + ms;
  }

  /** End our side; the client closes its own, or is closed for it after LINGER_MS. */
  #close(): void {
    this.#closing = true;
    this.#socket.end();
    this.#wait('linger');
  }

  #refuse(status: number, reason: string): void {
    this.#closing = true;
    this.#ctx.logRefusal(this.#socket, status, undefined, status === 408 ? 'CLIENT_HEADER_TIMEOUT' : 'INVALID_REQUEST');
    refuseRaw(this.#socket, status, reason);
    this.#wait('linger');
  }

  #stopWaiting(): void {
    this.#deadline = Infinity;
    this.#deadlineKind = undefined;
  }

  /** Called by the sweep: ends the wait if its deadline has passed. */
  expireAt(now: number): void {
    this.#exchange?.expireAt(now);
    if (now < this.#deadline) return;
    const kind = this.#deadlineKind;
    this.#stopWaiting();
    if (kind === 'linger') return void this.#socket.destroy();
    if (this.#exchange) return;
    if (kind === 'header') this.#refuse(408, 'Request Timeout');
    else if (this.idle) this.#socket.destroy();
  }
}

/** What routing reads of a fast-path request: the Host and other headers only when asked. */
function requestFacts(head: RequestHead): RequestFacts {
  return { method: head.method, target: head.target, host: head.host, header: (name) => head.header(name) };
}

/** One interval per thread: every fast connection, request and idle upstream connection whose deadline passed is timed out. */
export function sweepDeadlines(
  connections: ReadonlySet<ClientConnection>,
  nodeExchanges: ReadonlySet<Exchange>,
  upstreams: UpstreamSockets,
): void {
  const now = performance.now();
  for (const connection of connections) connection.expireAt(now);
  // Requests that Node's server parsed have no ClientConnection: their exchanges are checked here.
  for (const exchange of nodeExchanges) exchange.expireAt(now);
  upstreams.sweep(now);
}
