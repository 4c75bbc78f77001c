/**
 * One request on the fast path: choose a backend, write the request to a
 * keep-alive upstream connection, read the response head strictly, and
 * stream the body back as the upstream framed it — no stream objects, body
 * bytes written as the sockets hand them (only a small first piece is
 * copied, after the head, so both leave in one write), backpressure both
 * ways.
 *
 * Failures before the response: retry-policy.ts decides whether another
 * attempt follows (a body is held for it until its first connection
 * connects). No response head in `upstream_timeout_ms` → 504; an invalid response →
 * 502 and the upstream connection closed; a failure once the response has
 * started → the client connection is closed, so a cut body never looks whole.
 */
import type { Socket } from 'node:net';
import type { NodeResponse } from '../node-path/node-response.ts';
// Imported: the global `performance` is an accessor Node defines on globalThis, called on every read.
import { performance } from 'node:perf_hooks';
import type { BackendState } from '../../protocol.ts';
import type { ProxyConfig } from '../types.ts';
import type { Upstreams } from '../upstreams.ts';
import { ChunkedScanner } from './chunked.ts';
import { relayed } from './reclaim.ts';
import type { RequestHead } from './request-head.ts';
import { parseResponseHead, type ResponseHead } from './response-head.ts';
import { clientResponseHead, upstreamRequestHead, type Forwarding, type RequestEdits } from './rewrite.ts';
import { targetAfterStrip, type Route } from '../../routing/route-table.ts';
import type { AccessLogWriter } from '../../access-log/writer.ts';
import { ownAnswerBytes, plainAnswer, type OwnAnswer } from '../own-answers.ts';
import { accessLine, headSide, type RequestSide } from '../access-lines.ts';
import { editFlatHeaders } from '../../routing/header-edits.ts';
import { clientResponseRawHeaders, upstreamRequestHeaders } from '../headers.ts';
import { joinedHeader } from '../../routing/route-table.ts';
import { fromHeaderMap, toHeaderMap, type ProxyView, type RequestHooks } from '../request-hooks.ts';
import { hookAnswer, hookHeaderLines } from '../hook-headers.ts';
import { continueWith } from './continue-with.ts';
import { afterFailure, failureStatusText } from '../retry-policy.ts';
import { FastSession } from './fast-session.ts';
import { runRequestHooks } from './request-hook-chain.ts';
import { idLine, requestIdFrom, type RequestId } from '../request-id.ts';
import type { UpstreamOwner, UpstreamSockets } from './upstream-sockets.ts';
import type { CachedExchange, CacheSteps, ExchangeTap } from '../../cache/exchange-tap.ts';

/** Request body held while request hooks run, before the client is paused. */
const MAX_PENDING_BODY_BYTES = 64 * 1024;
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;
/** Body bytes that came with the response head are copied after it, for one write, up to this many; more go in a second buffer. */
const MERGED_BODY_BYTES = 16 * 1024;

export interface FastPathContext {
  sockets: UpstreamSockets;
  /** `proxy.request_id_header`, lowercase; null: off. */
  requestIdHeader(): string | null;
  /** Set only when an access log is configured: nothing is gathered for it otherwise. */
  accessLog: AccessLogWriter | undefined;
  /** This listener thread's id, for the access log. */
  thread: number;
  /** The user's request hooks, when a module is configured. */
  hooks: RequestHooks | undefined;
  /** The shared cache, when a `cache` section is configured: requests on caching routes get a tap. */
  cache: CacheSteps | undefined;
  /** Readiness as hooks see it (`session.proxy`). */
  view: ProxyView;
  /** A hook threw: logged with SLUICE_HOOK_FAILED. */
  onHookError(hook: keyof RequestHooks, path: string, error: unknown): void;
  proxy(): ProxyConfig;
  isDraining(): boolean;
  onUpstreamError(error: { backend: string; code: string; reason?: string }): void;
  observe(status: number, backend: string | undefined, seconds: number): void;
}

/**
 * The client's connection as the exchange uses it: the raw socket on the
 * fast path; on the Node path (node-path/), an adapter over Node's request
 * and response, which the exchange never writes raw bytes to (it writes
 * through NodeSide's response instead).
 */
export interface ClientStream {
  readonly remoteAddress?: string | undefined;
  readonly writableLength: number;
  write(bytes: Buffer): boolean;
  cork(): void;
  uncork(): void;
  pause(): unknown;
  resume(): unknown;
  isPaused(): boolean;
  once(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
  destroy(): unknown;
}

/** A request that Node's server parsed: where its response goes, its id (set on the response already), its log side. */
export interface NodeSide {
  response: NodeResponse;
  id: RequestId | undefined;
  request: RequestSide;
}

/** How the exchange ended, for the client connection: may it read the next request? `at`: performance.now() then. */
export type ExchangeEnd = (keepAlive: boolean, at: number) => void;

/** What a balancer that does not read the request is given. */
const UNKEYED = Object.freeze({ headers: {}, socket: {} });

/**
 * A field that an earlier step of the exchange set (the backend once an
 * attempt is sent, the scanner of a chunked body…). Reading it unset is a bug
 * in this file: it fails on that line, as a `!` would, but saying which.
 */
function known<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new Error(`exchange: ${name} read before it was set`);
  return value;
}

export class Exchange implements UpstreamOwner, CachedExchange {
  readonly #ctx: FastPathContext;
  /** The upstream group the request's route chose. */
  readonly #upstreams: Upstreams;
  readonly #route: Route | undefined;
  readonly #client: ClientStream;
  /** Set on the Node path: the response goes through Node's ServerResponse, not as bytes. */
  readonly #node: NodeSide | undefined;
  readonly #forwarding: Forwarding;
  /** Made a copy (`detached`) once anything must read it after the read that brought it. */
  #head: RequestHead;
  readonly #hasBody: boolean;
  readonly #onEnd: ExchangeEnd;
  readonly #startedAt = performance.now();
  /** Request body bytes received so far but not yet given to an upstream (only before the first attempt). */
  #pendingBody: Buffer | undefined;
  /** The client was paused because #pendingBody reached its bound. */
  #pausedForPending = false;
  /**
   * Body bytes written to a connection that has not connected yet: nothing has
   * reached a backend, so a refused connect can still take them elsewhere.
   */
  #unsent: Buffer[] | undefined;
  /** Backends tried so far (made on the first retry). */
  #tried: Set<string> | undefined;
  #attempt = 0;
  #staleRetried = false;
  #backend: BackendState | undefined;
  #upstream: Socket | undefined;
  #reused = false;
  #connected = false;
  /**
   * The upstream deadline (performance.now() time): connect, then no byte
   * either way for upstream_timeout_ms. Checked by the thread's sweep, which
   * moves it on when #upstreamActive says bytes moved since its last look.
   */
  #upstreamDeadline = Infinity;
  #upstreamTimeoutMs = 0;
  #upstreamActive = false;
  /** A 'drain' listener is set (backpressure either way): removed with the upstream. */
  #awaitingDrain = false;
  /** The request head as the upstream gets it: made once, sent again by a retry. */
  #upstreamHead: Buffer | undefined;
  /** What the balancer reads of the request: made once, read again by a retry. */
  #key: Parameters<Upstreams['pick']>[0] | undefined;
  #responseBuffer: Buffer | undefined;
  #response: ResponseHead | undefined;
  #bodyRemaining = 0;
  #bodyComplete = false;
  #scanner: ChunkedScanner | undefined;
  #closeAfter = false;
  /** The whole request body has gone up: only then may the upstream connection carry another request. */
  #requestSent: boolean;
  #status = 0;
  #done = false;
  #id: RequestId | undefined;
  /** Upstream attempts made (a retry is one more). */
  #attempts = 0;
  /** Response body bytes handed to the client socket. */
  #bodyBytes = 0;
  /** Why the exchange failed, for the access log (a code of docs/errors.md). */
  #error: string | null = null;
  /** What the access log needs of the head, read while its bytes are valid (only when logging). */
  #logged: { time: number; request: RequestSide } | undefined;
  /** Set when request hooks are configured. */
  #session: FastSession | undefined;
  /** Bytes of the response head written to the client (for `session.bytes`). */
  #headBytes = 0;
  /** A response hook is running: upstream bytes wait here, the upstream paused. */
  #heldResponse: Buffer[] | undefined;
  /** The cache step, on a caching route only (src/cache/). */
  readonly #tap: ExchangeTap | undefined;

  constructor(
    ctx: FastPathContext,
    client: ClientStream,
    forwarding: Forwarding,
    head: RequestHead,
    decision: { upstreams: Upstreams; route: Route | undefined },
    onEnd: ExchangeEnd,
    node?: NodeSide,
  ) {
    this.#ctx = ctx;
    this.#node = node;
    this.#upstreams = decision.upstreams;
    this.#route = decision.route;
    this.#client = client;
    this.#forwarding = forwarding;
    this.#head = head;
    this.#hasBody = head.contentLength > 0 || head.chunked;
    this.#requestSent = !this.#hasBody;
    this.#onEnd = onEnd;
    const cache = ctx.cache;
    const route = decision.route;
    // Without routes, the default route caches; with routes, those that say so.
    this.#tap =
      cache !== undefined && (route === undefined || route.cache)
        ? cache.stepFor(head, forwarding.proto, route, decision.upstreams)
        : undefined;
  }

  start(): void {
    // The head's bytes may lie in the thread's shared read buffer (direct-reads.ts), valid
    // only until this read is handled: what a retry needs of them is made now.
    this.#key = this.#keyed();
    const head = this.#head;
    const node = this.#node;
    const idHeader = this.#ctx.requestIdHeader();
    if (node) this.#id = node.id;
    else if (idHeader !== null) this.#id = requestIdFrom(idHeader, head.find(idHeader));
    if (this.#ctx.accessLog)
      this.#logged = { time: Date.now(), request: node ? node.request : headSide(head, this.#forwarding.clientIp) };
    // A hit is answered before request hooks run; what goes upstream runs them as without a cache.
    if (this.#tap) return this.#tap.begin(this);
    this.goUpstream();
  }

  goUpstream(): void {
    if (this.#done) return;
    const hooks = this.#ctx.hooks;
    if (hooks) return this.#startWithHooks(hooks);
    this.#forwardFirst(undefined, undefined);
  }

  get done(): boolean {
    return this.#done;
  }

  detachHead(): void {
    this.#detachHead();
  }

  /** A response from the cache: `head` ends with its last header line; the request id and Connection are added here. */
  serveCached(status: number, head: string, body: Buffer): void {
    if (this.#done) return;
    this.#status = status;
    this.#closeAfter = this.#head.close || this.#hasBody || this.#ctx.isDraining();
    const headOnly = this.#head.method === 'HEAD' || body.length === 0;
    const connection = this.#closeAfter ? 'close' : 'keep-alive';
    const bytes = Buffer.from(`${head}${this.#id ? idLine(this.#id) : ''}Connection: ${connection}\r\n\r\n`, 'latin1');
    this.#headBytes = bytes.length;
    this.#bodyBytes = headOnly ? 0 : body.length;
    this.#client.write(headOnly ? bytes : Buffer.concat([bytes, body], bytes.length + body.length));
    this.#finish(!this.#closeAfter, true);
  }

  /** Choose the backend (unless a hook did), make the upstream head, send the first attempt. */
  #forwardFirst(chosen: BackendState | undefined, hookedHeaders: readonly string[] | undefined): void {
    const backend = chosen ?? this.#upstreams.pick(known(this.#key, 'the request key'));
    if (!backend) return this.#answer(502, 'Bad Gateway', 'NO_SELECTABLE_BACKEND');
    const id = this.#id;
    const flat = hookedHeaders ?? this.#tap?.upstreamHeaders(() => this.#reframed(this.#routedHeaders()));
    const edits = flat ? { ...this.#requestEdits(), flat } : this.#requestEdits();
    this.#upstreamHead = upstreamRequestHead(this.#head, this.#forwarding, edits, id?.generated ? id : undefined);
    // The first attempt starts as the exchange does: no second clock read.
    // After hooks the clock has moved (a hook may have waited): the upstream deadline starts now.
    this.#send(backend, false, this.#session || this.#tap ? performance.now() : this.#startedAt);
  }

  /** The request hooks run first (request-hook-chain.ts); the exchange goes on from their results. */
  #startWithHooks(hooks: RequestHooks): void {
    const session = (this.#session = new FastSession(this.#ctx.view, this.#head, this.#forwarding.clientIp));
    runRequestHooks(hooks, session, {
      done: () => this.#done,
      detachHead: () => this.#detachHead(),
      failed: (hook, error) => this.#hookFailed(hook, error),
      respond: (answer) => this.#respondFromHook(answer),
      selectable: () => this.#upstreams.selectable,
      routedHeaders: () => this.#routedHeaders(),
      reframed: (lines) => this.#reframed(lines),
      forward: (chosen, headers) => this.#forwardFirst(chosen, headers),
    });
    // A hook may keep the session and read its headers after this read (later hooks, a timer, a queue):
    // the session must not point into the thread's shared read buffer then.
    this.#detachHead();
  }

  /** A hook's header lines with the request's own framing put back (Transfer-Encoding is added by the head writer). */
  #reframed(lines: string[]): string[] {
    const contentLength = this.#head.find('content-length');
    if (contentLength !== undefined) lines.push('Content-Length', contentLength);
    return lines;
  }

  /** The headers the upstream would get from the rules and the route, as a list a hook may edit. */
  #routedHeaders(): string[] {
    const flat = upstreamRequestHeaders(this.#head.rawHeaders, this.#forwarding);
    const edits = this.#route?.requestHeaders;
    return edits ? editFlatHeaders(flat, edits) : flat;
  }

  #detachHead(): void {
    if (this.#headDetached) return;
    this.#headDetached = true;
    this.#head = this.#head.detached();
    this.#session?.rebase(this.#head);
  }

  #headDetached = false;

  #hookFailed(hook: keyof RequestHooks, error: unknown): void {
    if (this.#done) return;
    this.#ctx.onHookError(hook, this.#head.target, error);
    // Nothing of the response has gone out before a responseFilter finished: the client can still get a 500.
    if (this.#headBytes > 0) return this.#brokenMidResponse('SLUICE_HOOK_FAILED');
    this.#heldResponse = undefined;
    this.#discardUpstream();
    this.#answer(500, 'Internal Server Error', 'SLUICE_HOOK_FAILED');
  }

  /** requestFilter answered: the proxy's own answer with the hook's status, headers and body. */
  #respondFromHook(respond: { status: number; headers?: Record<string, string>; body?: string }): void {
    if (this.#done) return;
    const answer = hookAnswer(respond);
    this.#status = respond.status;
    this.#closeAfter = this.#head.close || this.#hasBody || this.#ctx.isDraining();
    this.#sendOwn(answer, this.#id ? idLine(this.#id) : '');
    this.#finish(!this.#closeAfter, true);
  }

  /** An answer of the proxy's own (or a hook's) goes out whole: as bytes, or through Node's response. */
  #sendOwn(answer: OwnAnswer, extraLines: string): void {
    const headOnly = this.#head.method === 'HEAD';
    const bytes = ownAnswerBytes(answer, this.#closeAfter, headOnly, extraLines);
    this.#bodyBytes = headOnly ? 0 : Buffer.byteLength(answer.body);
    this.#headBytes = bytes.length - this.#bodyBytes;
    if (this.#node) this.#node.response.answer(answer, this.#closeAfter);
    else this.#client.write(bytes);
  }

  /** Request body bytes from the client (never more than Content-Length). */
  clientBody(chunk: Buffer): void {
    if (this.#done) return;
    const upstream = this.#upstream;
    this.#unsent?.push(chunk);
    relayed(chunk.length);
    if (!upstream) {
      // Before the first attempt (a hook is still running): held, with the client paused past a bound, as a
      // socket's own buffer would push back.
      const pending = this.#pendingBody;
      this.#pendingBody = pending ? Buffer.concat([pending, chunk]) : chunk;
      if (this.#pendingBody.length > MAX_PENDING_BODY_BYTES && !this.#client.isPaused()) {
        this.#client.pause();
        this.#pausedForPending = true;
      }
      return;
    }
    this.#upstreamActive = true;
    if (!upstream.write(chunk)) {
      this.#client.pause();
      this.#pausedForUpstream = true;
      upstream.once('drain', this.#resumeClient);
      this.#awaitingDrain = true;
    }
  }

  /** The client was paused until the upstream drained: an attempt that ends first must resume it. */
  #pausedForUpstream = false;

  readonly #resumeClient = (): void => {
    this.#pausedForUpstream = false;
    this.#client.resume();
  };
  readonly #resumeUpstream = (): void => void this.#upstream?.resume();

  /** The client has sent the last byte of the request body. */
  clientBodyDone(): void {
    this.#requestSent = true;
  }

  /**
   * The client's body cannot be whole: its chunked framing broke (llhttp
   * would refuse it too), or the client half-closed before sending all of
   * it. The upstream got a request cut short and its connection goes; the
   * client gets 400, or, if the response had started, its connection closed.
   */
  clientBodyInvalid(): void {
    if (this.#done) return;
    if (this.#response) return this.#brokenMidResponse('INVALID_REQUEST_BODY');
    if (this.#backend) this.#ctx.onUpstreamError({ backend: this.#backend.id, code: 'INVALID_REQUEST_BODY' });
    this.#discardUpstream();
    this.#answer(400, 'Bad Request', 'INVALID_REQUEST_BODY');
  }

  /** The client went away: nothing more to send; the upstream connection cannot be reused. */
  clientClosed(): void {
    if (this.#done) return;
    this.#error ??= 'CLIENT_ABORTED';
    this.#finish(false, false);
  }

  /** What the route changes on the way up; undefined for a plain request (the byte copy). */
  #requestEdits(): RequestEdits | undefined {
    const route = this.#route;
    if (route === undefined || (route.stripPrefix === null && route.requestHeaders === null)) return undefined;
    return {
      ...(route.stripPrefix !== null && { target: targetAfterStrip(this.#head.target, route.stripPrefix) }),
      headers: route.requestHeaders,
    };
  }

  #keyed() {
    if (!this.#upstreams.needsRequestKey) return UNKEYED;
    const headers: Record<string, string> = {};
    const raw = this.#head.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      headers[name] = headers[name] === undefined ? raw[i + 1]! : `${headers[name]}, ${raw[i + 1]}`;
    }
    return { url: this.#head.target, headers, socket: this.#client };
  }

  #send(backend: BackendState, fresh: boolean, now = performance.now()): void {
    this.#backend = backend;
    this.#attempts++;
    this.#upstreams.inFlight.acquire(backend.slot);
    const idle = fresh ? undefined : this.#ctx.sockets.takeIdle(backend, this);
    const reused = idle !== undefined;
    const upstream = idle ?? this.#ctx.sockets.connect(backend, this);
    this.#upstream = upstream;
    this.#reused = reused;
    this.#connected = reused;
    this.#responseBuffer = undefined;
    const proxy = this.#ctx.proxy();
    this.#armUpstream(reused ? proxy.upstream_timeout_ms : proxy.upstream_connect_timeout_ms, now);
    const head = known(this.#upstreamHead, 'the upstream head');
    const body = this.#pendingBody;
    this.#pendingBody = undefined;
    if (this.#pausedForPending) {
      this.#pausedForPending = false;
      this.#client.resume();
    }
    this.#unsent = reused ? undefined : body ? [body] : [];
    if (body) {
      upstream.cork();
      upstream.write(head);
      upstream.write(body);
      upstream.uncork();
    } else {
      upstream.write(head);
    }
  }

  onUpstreamConnect(): void {
    this.#connected = true;
    this.#unsent = undefined;
    this.#armUpstream(this.#ctx.proxy().upstream_timeout_ms, performance.now());
  }

  #armUpstream(ms: number, now: number): void {
    this.#upstreamTimeoutMs = ms;
    this.#upstreamDeadline = now + ms;
    this.#upstreamActive = false;
  }

  /** Called by the sweep: the upstream has been silent past its deadline. */
  expireAt(now: number): void {
    if (!this.#upstream) return;
    if (this.#upstreamActive) {
      this.#upstreamActive = false;
      this.#upstreamDeadline = now + this.#upstreamTimeoutMs;
    } else if (now >= this.#upstreamDeadline) {
      this.#onUpstreamTimeout();
    }
  }

  /** Stop using the upstream socket; the caller then releases or discards it. */
  #detachUpstream(): Socket | undefined {
    const upstream = this.#upstream;
    if (!upstream) return undefined;
    if (this.#awaitingDrain) {
      this.#awaitingDrain = false;
      upstream.off('drain', this.#resumeClient);
      this.#client.off('drain', this.#resumeUpstream);
    }
    // A retry's upstream pauses the client again if it too fills up.
    if (this.#pausedForUpstream) this.#resumeClient();
    this.#upstream = undefined;
    this.#upstreams.inFlight.release(known(this.#backend, 'the backend').slot);
    return upstream;
  }

  /** Returns whether `chunk` is still referenced (see UpstreamOwner): by a head not yet whole, or a write not yet flushed. */
  onUpstreamData(chunk: Buffer): boolean {
    this.#upstreamActive = true;
    if (this.#heldResponse) {
      this.#heldResponse.push(Buffer.from(chunk));
      return false;
    }
    if (this.#response) return this.#onResponseBody(this.#response, chunk);
    const buffer = this.#responseBuffer ? Buffer.concat([this.#responseBuffer, chunk]) : chunk;
    this.#responseBuffer = buffer;
    return this.#parseResponse(buffer);
  }

  #parseResponse(buffer: Buffer): boolean {
    const parsed = parseResponseHead(buffer, MAX_RESPONSE_HEAD_BYTES, this.#head.method);
    if (parsed.kind === 'incomplete') return true;
    if (parsed.kind === 'invalid') {
      this.#invalidResponse(parsed.reason);
      return false;
    }
    const head = parsed.head;
    if (head.status === 101) {
      this.#invalidResponse('101 without an upgrade');
      return false;
    }
    if (head.status >= 100 && head.status < 200) {
      // Interim responses (100, 102, 103) are not passed on: the client did not ask for them.
      const rest = buffer.subarray(head.headLength);
      this.#responseBuffer = rest.length > 0 ? rest : undefined;
      return rest.length > 0 ? this.#parseResponse(rest) : false;
    }
    this.#responseBuffer = undefined;
    this.#response = head;
    this.#status = head.status;
    // An earlier attempt's failure was retried away: the request did not fail.
    this.#error = null;
    this.#upstreams.noteSuccess(known(this.#backend, 'the backend').id);
    // A request body still coming in would be read as the next request: this connection ends after the response.
    this.#closeAfter =
      this.#head.close || head.framing.type === 'close' || !this.#requestSent || this.#ctx.isDraining();
    // A 304 refreshing an entry, or an error a stale entry answers: the cache answered, the response goes no further.
    if (this.#tap?.answersInstead(head)) return false;
    const hooks = this.#ctx.hooks;
    if (hooks?.responseFilter) return this.#filterResponse(hooks.responseFilter, head, buffer);
    return this.#respond(head, buffer, undefined);
  }

  /**
   * The user's responseFilter edits the response headers before they go
   * out. While it runs asynchronously the upstream is paused, and what it
   * still sends is held. The body goes out as the upstream framed it, so
   * the framing headers are the upstream's whatever the hook did to them.
   */
  #filterResponse(
    responseFilter: NonNullable<RequestHooks['responseFilter']>,
    head: ResponseHead,
    buffer: Buffer,
  ): boolean {
    const edits = this.#route?.responseHeaders;
    const upstreamLines = clientResponseRawHeaders(head.rawHeaders);
    const map = toHeaderMap(edits ? editFlatHeaders(upstreamLines, edits) : upstreamLines);
    const contentLength = joinedHeader(head.rawHeaders, 'content-length');
    // Both are set by the callbacks below, which the type's narrowing does not follow.
    let waited = false as boolean;
    let kept = false;
    const respond = () => {
      if (this.#done) return;
      let flat = hookHeaderLines(fromHeaderMap(map));
      if (contentLength !== undefined) flat = [...flat, 'Content-Length', contentLength];
      const held = this.#heldResponse;
      this.#heldResponse = undefined;
      kept = this.#respond(head, buffer, flat);
      if (!waited) return;
      this.#upstream?.resume();
      // onUpstreamData may finish the exchange, which the type narrowed to not done above does not see.
      for (const chunk of held ?? []) if (!(this.#done as boolean)) this.onUpstreamData(chunk);
    };
    continueWith(
      () => responseFilter(known(this.#session, 'the session'), map),
      respond,
      (error) => this.#hookFailed('responseFilter', error),
      () => {
        waited = true;
        this.#heldResponse = [];
        this.#upstream?.pause();
      },
    );
    // Waiting on the hook: the bytes after the head are used once it settles.
    return waited || kept;
  }

  /** The response head and the body bytes that came with it go to the client. */
  #respond(head: ResponseHead, buffer: Buffer, replaced: readonly string[] | undefined): boolean {
    const tap = this.#tap;
    if (tap) replaced = tap.clientHeaders(head, replaced);
    const node = this.#node;
    if (!node) return this.#sendResponse(head, buffer, replaced);
    const refusal = node.response.refusal(head);
    if (refusal !== undefined) {
      this.#invalidResponse(refusal);
      return false;
    }
    try {
      return this.#sendResponse(head, buffer, replaced);
    } catch (error) {
      // Node's response refused something of the upstream's (a field it cannot carry): never the thread's end.
      this.#nodeRefused(error);
      return false;
    }
  }

  #sendResponse(head: ResponseHead, buffer: Buffer, replaced: readonly string[] | undefined): boolean {
    switch (head.framing.type) {
      case 'none':
        this.#headOnly(head, buffer, replaced);
        this.#complete(buffer.length === head.headLength && head.reusable);
        return false;
      case 'length':
        this.#bodyRemaining = head.framing.length;
        break;
      case 'chunked':
        this.#scanner = new ChunkedScanner();
        break;
      case 'close':
        break;
    }
    const end = this.#bodyEnd(head, buffer, head.headLength);
    if (end === -2) {
      this.#headOnly(head, buffer, replaced);
      this.#brokenMidResponse(
        'INVALID_RESPONSE',
        `invalid chunked body: ${known(this.#scanner, 'the chunk scanner').error}`,
      );
      return false;
    }
    relayed(end - head.headLength);
    this.#bodyBytes += end - head.headLength;
    this.#tap?.body(buffer.subarray(head.headLength, end));
    const kept = this.#headWithBody(head, buffer, end, replaced);
    if (this.#bodyComplete) this.#complete(end === buffer.length && head.reusable);
    return kept;
  }

  /** The response head alone: the response has no body, or its body turned out broken. */
  #headOnly(head: ResponseHead, buffer: Buffer, replaced: readonly string[] | undefined): void {
    const edits = this.#route?.responseHeaders;
    const node = this.#node;
    if (node) {
      this.#headBytes = node.response.head(head, this.#closeAfter, buffer, 0, 0, edits, this.#id, replaced).headBytes;
      return;
    }
    this.#client.write(
      this.#headOut(clientResponseHead(head, this.#closeAfter, buffer, 0, 0, edits, this.#id, replaced)),
    );
  }

  /**
   * The head and the body bytes `buffer[headLength, end)` that came with it,
   * in one write (in a buffer of their own) when they are few. Returns
   * whether `buffer` is still referenced by a write not yet flushed.
   */
  #headWithBody(head: ResponseHead, buffer: Buffer, end: number, replaced: readonly string[] | undefined): boolean {
    const edits = this.#route?.responseHeaders;
    const node = this.#node;
    if (node) {
      const out = node.response.head(head, this.#closeAfter, buffer, head.headLength, end, edits, this.#id, replaced);
      this.#headBytes = out.headBytes;
      this.#written(out.flushed);
      return node.response.holds();
    }
    const client = this.#client;
    if (end - head.headLength <= MERGED_BODY_BYTES) {
      this.#written(
        client.write(
          this.#headOut(
            clientResponseHead(head, this.#closeAfter, buffer, head.headLength, end, edits, this.#id, replaced),
            end - head.headLength,
          ),
        ),
      );
      return false;
    }
    client.cork();
    client.write(this.#headOut(clientResponseHead(head, this.#closeAfter, buffer, 0, 0, edits, this.#id, replaced)));
    this.#written(client.write(buffer.subarray(head.headLength, end)));
    client.uncork();
    return client.writableLength > 0;
  }

  /** A write through Node's response; false when it threw (the exchange has ended then). */
  #throughNode(write: () => void): boolean {
    try {
      write();
      return true;
    } catch (error) {
      this.#nodeRefused(error);
      return false;
    }
  }

  /** Node's response threw on what the upstream sent: 502 if nothing went out yet, else the client connection goes. */
  #nodeRefused(error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    if (this.#headBytes === 0 && !this.#done) {
      const backend = known(this.#backend, 'the backend').id;
      this.#discardUpstream();
      this.#ctx.onUpstreamError({ backend, code: 'INVALID_RESPONSE', reason });
      return this.#answer(502, 'Bad Gateway', 'INVALID_RESPONSE');
    }
    this.#brokenMidResponse('INVALID_RESPONSE', reason);
  }

  /** A response head on its way to the client (with `withBody` body bytes after it): counted for `session.bytes`. */
  #headOut(bytes: Buffer, withBody = 0): Buffer {
    this.#headBytes = bytes.length - withBody;
    return bytes;
  }

  /**
   * Where the response body ends in `chunk` (from `start`): its length if
   * the body goes on past it, setting #bodyComplete when the body ends
   * within; -2 for a broken chunked body.
   */
  #bodyEnd(response: ResponseHead, chunk: Buffer, start: number): number {
    const framing = response.framing;
    if (framing.type === 'length') {
      const end = Math.min(chunk.length, start + this.#bodyRemaining);
      this.#bodyRemaining -= end - start;
      this.#bodyComplete = this.#bodyRemaining === 0;
      return end;
    }
    if (framing.type === 'chunked') {
      const at = known(this.#scanner, 'the chunk scanner').scan(chunk, start);
      if (at === -2) return -2;
      this.#bodyComplete = at >= 0;
      return at >= 0 ? at : chunk.length;
    }
    return chunk.length;
  }

  /** After a write to the client: a full buffer pauses the upstream until it drains. */
  #written(flushed: boolean): void {
    if (flushed) return;
    known(this.#upstream, 'the upstream socket').pause();
    this.#client.once('drain', this.#resumeUpstream);
    this.#awaitingDrain = true;
  }

  #onResponseBody(response: ResponseHead, chunk: Buffer): boolean {
    const end = this.#bodyEnd(response, chunk, 0);
    if (end === -2) {
      this.#brokenMidResponse(
        'INVALID_RESPONSE',
        `invalid chunked body: ${known(this.#scanner, 'the chunk scanner').error}`,
      );
      return false;
    }
    relayed(end);
    this.#bodyBytes += end;
    if (this.#tap && end > 0) this.#tap.body(end === chunk.length ? chunk : chunk.subarray(0, end));
    const client = this.#client;
    const node = this.#node;
    if (end > 0) {
      const body = end === chunk.length ? chunk : chunk.subarray(0, end);
      if (!node) this.#written(client.write(body));
      else if (!this.#throughNode(() => this.#written(node.response.body(body)))) return false;
    }
    if (this.#bodyComplete) this.#complete(end === chunk.length && response.reusable);
    // Bytes the kernel did not take at once wait in the client socket's queue (or Node's response), by reference.
    return end > 0 && (node ? node.response.holds() : client.writableLength > 0);
  }

  /** The upstream's FIN means what its close means: the end of a read-until-close body, or a failure. */
  onUpstreamEnd(): void {
    this.onUpstreamClose();
  }

  onUpstreamError(error: NodeJS.ErrnoException): void {
    const code = error.code ?? 'UPSTREAM_ERROR';
    if (this.#response) return this.#brokenMidResponse(code);
    this.#failBeforeResponse(code);
  }

  onUpstreamClose(): void {
    if (this.#done) return;
    if (this.#response)
      return this.#response.framing.type === 'close'
        ? this.#complete(false)
        : this.#brokenMidResponse('UPSTREAM_CLOSED', 'mid-response');
    this.#failBeforeResponse('UPSTREAM_CLOSED');
  }

  #onUpstreamTimeout(): void {
    if (!this.#connected) return this.#failBeforeResponse('CONNECT_TIMEOUT');
    if (this.#response) return this.#brokenMidResponse('UPSTREAM_TIMEOUT', 'mid-response');
    this.#failBeforeResponse('UPSTREAM_TIMEOUT');
  }

  #failBeforeResponse(code: string): void {
    if (this.#done) return;
    this.#error = code;
    const backend = known(this.#backend, 'the backend');
    const answered = this.#responseBuffer !== undefined;
    this.#discardUpstream();
    this.#ctx.onUpstreamError({ backend: backend.id, code });
    const unsent = this.#hasBody ? this.#unsent : [];
    const step = afterFailure({
      code,
      retries: this.#attempt,
      hasBody: this.#hasBody,
      bodyHeld: unsent !== undefined,
      answered,
      reused: this.#reused,
      staleRetried: this.#staleRetried,
    });
    if (step.passive) this.#upstreams.noteFailure(backend.id, code);
    if (step.next === 'same-backend') {
      this.#staleRetried = true;
      return this.#send(backend, true);
    }
    if (step.next === 'next-backend') {
      this.#attempt++;
      const tried = (this.#tried ??= new Set());
      tried.add(backend.id);
      const next = this.#upstreams.pick(known(this.#key, 'the request key'), tried);
      if (next) {
        // afterFailure goes to the next backend only with the body held.
        const held = known(unsent, 'the unsent body');
        this.#pendingBody = held.length > 0 ? Buffer.concat(held) : undefined;
        return this.#send(next, false);
      }
    }
    this.#answer(step.status, failureStatusText(step.status), code);
  }

  #invalidResponse(reason: string): void {
    const backend = known(this.#backend, 'the backend').id;
    this.#discardUpstream();
    this.#ctx.onUpstreamError({ backend, code: 'INVALID_RESPONSE', reason });
    this.#answer(502, 'Bad Gateway', 'INVALID_RESPONSE');
  }

  /** The response started and cannot be finished: closing the client connection is the only honest signal. */
  #brokenMidResponse(code: string, reason?: string): void {
    if (this.#done) return;
    this.#error = code;
    this.#ctx.onUpstreamError({
      backend: known(this.#backend, 'the backend').id,
      code,
      ...(reason !== undefined && { reason }),
    });
    this.#discardUpstream();
    this.#client.destroy();
    this.#finish(false, true);
  }

  /** The proxy's own answer, before any response byte went out; `code` says why, for the access log. */
  #answer(status: number, text: string, code: string): void {
    // stale-if-error: a stale entry answers instead of the proxy's 502/503/504.
    if (this.#tap?.answersFailure(status)) return;
    this.#status = status;
    this.#error = code;
    const answer = plainAnswer(status, text, code);
    // A request body not yet read would be taken for the next request: close after answering.
    this.#closeAfter = this.#head.close || this.#hasBody || this.#ctx.isDraining();
    const extra = `${this.#id ? idLine(this.#id) : ''}${this.#tap ? this.#tap.cacheStatusLine() : ''}`;
    this.#sendOwn(answer, extra);
    this.#finish(!this.#closeAfter, true);
  }

  #discardUpstream(): void {
    const upstream = this.#detachUpstream();
    if (upstream) this.#ctx.sockets.discard(upstream);
  }

  #complete(reusable: boolean): void {
    this.#tap?.complete();
    const node = this.#node;
    if (node && !this.#throughNode(() => node.response.end())) return;
    const backend = known(this.#backend, 'the backend').id;
    const upstream = this.#detachUpstream();
    if (upstream) {
      // An upstream that answered before the body was all sent (413, say) still expects the rest.
      if (reusable && this.#requestSent) this.#ctx.sockets.release(backend, upstream);
      else this.#ctx.sockets.discard(upstream);
    }
    this.#finish(!this.#closeAfter && !this.#ctx.isDraining(), true);
  }

  #finish(keepAlive: boolean, observe: boolean): void {
    if (this.#done) return;
    this.#done = true;
    this.#tap?.end();
    this.#discardUpstream();
    const now = performance.now();
    if (observe)
      this.#ctx.observe(this.#status, this.#response ? this.#backend?.id : undefined, (now - this.#startedAt) / 1000);
    const accessLog = this.#ctx.accessLog;
    if (this.#logged && accessLog) this.#log(accessLog, this.#logged, now - this.#startedAt);
    const onRequestEnd = this.#ctx.hooks?.onRequestEnd;
    if (onRequestEnd && this.#session) this.#endHook(onRequestEnd, this.#session, now);
    this.#onEnd(keepAlive, now);
  }

  /** Body bytes the client got: on the Node path without the upstream's chunk framing, which Node's response replaced. */
  #sentBodyBytes(): number {
    const node = this.#node;
    return node && this.#response ? node.response.bodyBytes : this.#bodyBytes;
  }

  /** onRequestEnd sees what the client got; it runs after the response, so its failure is only logged. */
  #endHook(onRequestEnd: NonNullable<RequestHooks['onRequestEnd']>, session: FastSession, now: number): void {
    session.status = this.#status === 0 ? 499 : this.#status;
    session.duration_ms = now - this.#startedAt;
    session.bytes = this.#headBytes + this.#sentBodyBytes();
    if (this.#response && this.#backend) session.backend = this.#backend.id;
    continueWith(
      () => onRequestEnd(session),
      () => {
        /* nothing follows: the response is out */
      },
      (error) => this.#ctx.onHookError('onRequestEnd', session.path, error),
    );
  }

  #log(accessLog: AccessLogWriter, logged: { time: number; request: RequestSide }, durationMs: number): void {
    const line = accessLine(logged.time, this.#ctx.thread, logged.request, {
      // nginx's 499: the client went away before any response went out.
      status: this.#status === 0 ? 499 : this.#status,
      bytes_sent: this.#sentBodyBytes(),
      duration_ms: durationMs,
      route: this.#route?.name ?? null,
      upstream: this.#upstreams.name,
      backend: this.#backend?.id ?? null,
      upstream_status: this.#response?.status ?? null,
      attempts: this.#attempts,
      error: this.#error,
      request_id: this.#id ?? null,
    });
    accessLog.write(line);
  }
}
