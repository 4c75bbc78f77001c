/**
 * One HTTP/2 connection's life beside what nghttp2 does: its streams
 * counted, its idle and header timeouts, the rapid-reset guard, and the
 * two-GOAWAY drain.
 *
 * Drain, per connection (docs/operations.md):
 *   1. GOAWAY(2^31-1) at once, written as bytes (frames.ts says why);
 *   2. a PING; on its ACK (every stream the client sent before it saw the
 *      GOAWAY has arrived by then), or after 1 s, GOAWAY(last stream id);
 *   3. streams up to that id are served; later ones get REFUSED_STREAM;
 *   4. when the last of them ends, the connection closes.
 *
 * Rapid reset (CVE-2023-44487): a client that resets more than
 * `RESET_LIMIT` streams within `RESET_WINDOW_MS`, and more than it lets
 * complete, gets GOAWAY(ENHANCE_YOUR_CALM) and is closed. nghttp2's own
 * guard (a burst of about 1,000) answers with INTERNAL_ERROR; this one acts
 * well before it.
 */
import { constants, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { goawayFrame, MAX_STREAM_ID } from './frames.ts';

export const RESET_LIMIT = 100;
export const RESET_WINDOW_MS = 10_000;
/** How long the drain waits for the PING's ACK before its second GOAWAY. */
export const PING_WAIT_MS = 1_000;

export interface SessionTimeouts {
  /** Until the first request's headers are complete. */
  headerMs: number;
  /** Between requests, with no stream open. */
  idleMs: number;
}

export interface SessionEvents {
  onRapidReset(): void;
}

export class SessionWatch {
  readonly #session: ServerHttp2Session;
  readonly #socket: Socket;
  readonly #timeouts: () => SessionTimeouts;
  readonly #events: SessionEvents;
  /** Streams being served (refused ones are not). */
  #active = 0;
  #maxStreamId = 0;
  #sawStream = false;
  #timer: NodeJS.Timeout | undefined;
  #windowStart = performance.now();
  #resets = 0;
  #completed = 0;
  #calmed = false;
  /** The drain: undefined until it starts; then the id of its second GOAWAY once sent. */
  #draining = false;
  #lastStreamId: number | undefined;
  #refusedAny = false;
  #closing = false;
  /** Our SETTINGS went out (the client acknowledged them): the connection preface is behind us. */
  #settled = false;

  constructor(session: ServerHttp2Session, socket: Socket, timeouts: () => SessionTimeouts, events: SessionEvents) {
    this.#session = session;
    this.#socket = socket;
    this.#timeouts = timeouts;
    this.#events = events;
    session.on('stream', (stream) => this.#onStream(stream));
    session.once('close', () => clearTimeout(this.#timer));
    session.once('localSettings', () => (this.#settled = true));
    this.#armIdle();
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** True (and the stream refused) for a stream that came after the drain's second GOAWAY. */
  refuses(stream: ServerHttp2Stream): boolean {
    if (this.#lastStreamId === undefined || streamId(stream) <= this.#lastStreamId) return false;
    this.#refusedAny = true;
    stream.close(constants.NGHTTP2_REFUSED_STREAM);
    return true;
  }

  #onStream(stream: ServerHttp2Stream): void {
    const id = streamId(stream);
    this.#maxStreamId = Math.max(this.#maxStreamId, id);
    this.#sawStream = true;
    if (this.#lastStreamId !== undefined && id > this.#lastStreamId) return;
    this.#active++;
    clearTimeout(this.#timer);
    let aborted = false;
    stream.once('aborted', () => {
      // Reset by the client before any answer: what a rapid-reset attack does, stream after stream.
      if (!stream.headersSent) aborted = true;
    });
    stream.once('close', () => {
      this.#active--;
      if (aborted && stream.rstCode !== constants.NGHTTP2_REFUSED_STREAM) this.#countReset();
      else this.#countCompleted();
      if (this.#active === 0) this.#afterLastStream();
    });
  }

  #windowed(): void {
    const now = performance.now();
    if (now - this.#windowStart < RESET_WINDOW_MS) return;
    this.#windowStart = now;
    this.#resets = 0;
    this.#completed = 0;
  }

  #countCompleted(): void {
    this.#windowed();
    this.#completed++;
  }

  #countReset(): void {
    this.#windowed();
    this.#resets++;
    if (this.#calmed || this.#resets <= RESET_LIMIT || this.#resets <= this.#completed) return;
    this.#calmed = true;
    this.#events.onRapidReset();
    this.#session.destroy(new Error('rapid reset'), constants.NGHTTP2_ENHANCE_YOUR_CALM);
  }

  #armIdle(): void {
    clearTimeout(this.#timer);
    if (this.#draining || this.#session.destroyed) return;
    const timeouts = this.#timeouts();
    const ms = this.#sawStream ? timeouts.idleMs : timeouts.headerMs;
    this.#timer = setTimeout(() => this.#close(), ms).unref();
  }

  #afterLastStream(): void {
    if (this.#draining) return this.#closeIfDone();
    this.#armIdle();
  }

  /** Steps 1 and 2 of the drain; idle connections included. */
  drain(): void {
    if (this.#draining || this.#session.destroyed) return;
    this.#draining = true;
    clearTimeout(this.#timer);
    if (this.#settled) return this.#goaways();
    // A server's first frame must be its SETTINGS (RFC 9113 §3.4), which nghttp2 writes on its own
    // schedule: a GOAWAY before it is a protocol error to the client. Its ACK says it went out.
    let started = false;
    const start = () => {
      if (started) return;
      started = true;
      clearTimeout(fallback);
      this.#goaways();
    };
    const fallback = setTimeout(start, PING_WAIT_MS).unref();
    this.#session.once('localSettings', start);
  }

  #goaways(): void {
    if (this.#session.destroyed) return;
    this.#socket.write(goawayFrame(MAX_STREAM_ID));
    let sent = false;
    const second = () => {
      if (sent || this.#session.destroyed) return;
      sent = true;
      clearTimeout(wait);
      this.#lastStreamId = this.#maxStreamId;
      this.#socket.write(goawayFrame(this.#lastStreamId));
      this.#closeIfDone();
    };
    const wait = setTimeout(second, PING_WAIT_MS).unref();
    // ping() returns false when too many PINGs are unanswered: then only the timer ends the wait.
    this.#session.ping(() => second());
  }

  #closeIfDone(): void {
    if (this.#lastStreamId === undefined || this.#active > 0) return;
    this.#close();
  }

  /**
   * Closes once nothing is being served. Node's `close()` sends nghttp2's
   * GOAWAY with the last stream it processed: the drain's own id unless
   * streams past it were refused, which nghttp2 counted; a GOAWAY must never
   * raise the id it said before, so then the socket is just ended.
   */
  #close(): void {
    if (this.#closing || this.#session.destroyed) return;
    this.#closing = true;
    if (!this.#refusedAny) return this.#session.close();
    // After nghttp2's write of this tick (the last stream's final frames), never before it.
    setImmediate(() => this.#socket.end());
    setTimeout(() => this.#socket.destroy(), PING_WAIT_MS).unref();
  }
}

/**
 * A server stream's id, from the client's HEADERS. Node types it optional for a client's stream not sent yet;
 * 0, the connection's own stream, would stand for one without, and is below every request's.
 */
function streamId(stream: ServerHttp2Stream): number {
  return stream.id ?? 0;
}
