/**
 * The core's response to a request that came through Node's server (an
 * HTTP/1.x request the codec handed over, or an HTTP/2 stream): the same
 * head rules as the fast path's (clientResponseHead), given to Node's
 * ServerResponse as fields, which frames the body for its protocol. The
 * body comes as the upstream framed it: a chunked one has its framing taken
 * off and its trailers passed on (HTTP/2 carries them whatever the framing).
 */
import type { ServerResponse } from 'node:http';
import type { HeaderEdits } from '../../routing/header-edits.ts';
import { editFlatHeaders } from '../../routing/header-edits.ts';
import { clientResponseRawHeaders } from '../headers.ts';
import type { ResponseHead } from '../http1/response-head.ts';
import { withoutHeader } from '../http1/rewrite.ts';
import type { OwnAnswer } from '../own-answers.ts';
import { sendOwnAnswer } from '../own-answers.ts';
import type { RequestId } from '../request-id.ts';
import { ChunkedDecoder } from './chunked-decoder.ts';
import { CONNECTION_SPECIFIC, mayTrail } from './trailer-fields.ts';

/** The fields Node's HTTP/2 takes once only (its `kSingleValueHeaders`): an upstream's repeat is dropped. */
const SINGLE_VALUE = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'age',
  'authorization',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'dnt',
  'etag',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'tk',
  'upgrade-insecure-requests',
  'user-agent',
  'x-content-type-options',
]);

export class NodeResponse {
  readonly #res: ServerResponse;
  /** An HTTP/2 stream under Node's compatibility response (h1-view.ts). */
  readonly #http2: boolean;
  #decoder: ChunkedDecoder | undefined;
  /** Body bytes written to the client, without the upstream's chunk framing (the access log's `bytes_sent`). */
  bodyBytes = 0;
  readonly #write = (data: Buffer): void => {
    if (data.length === 0) return;
    this.bodyBytes += data.length;
    this.#flushed = this.#res.write(data);
  };
  #flushed = true;

  /** What server.ts set on the response before the core took it (the request id, Cache-Status). */
  readonly #preset: ReadonlySet<string>;

  constructor(res: ServerResponse, http2: boolean) {
    this.#res = res;
    this.#http2 = http2;
    this.#preset = new Set(res.getHeaderNames());
  }

  /**
   * The proxy's own answer; the request id is on the response already
   * (server.ts sets it first). After an upstream head that Node's response
   * refused, the fields it had taken of that head go first.
   */
  answer(answer: OwnAnswer, close: boolean): void {
    const res = this.#res;
    if (!res.headersSent) for (const name of res.getHeaderNames()) if (!this.#preset.has(name)) res.removeHeader(name);
    sendOwnAnswer(res, answer, close);
  }

  /**
   * Why this upstream response cannot go to this client as it is, or
   * undefined. Node's response throws on a status it cannot write; a
   * transfer coding besides chunked could only be passed on by passing the
   * framing on too, which Node's response does not (nginx answers 502).
   */
  refusal(head: ResponseHead): string | undefined {
    if (head.status < 100 || head.status > (this.#http2 ? 599 : 999)) return `status ${head.status}`;
    const coding = head.transferEncoding;
    if (coding !== undefined && head.framing.type !== 'none' && coding.trim().toLowerCase() !== 'chunked')
      return `transfer-encoding ${coding}`;
    return undefined;
  }

  /**
   * The upstream's head, then `buffer[start, end)` of its body. Returns the
   * head's size in HTTP/1.1 terms (what `session.bytes` counts) and whether
   * the writes were taken without filling the buffer.
   */
  head(
    head: ResponseHead,
    closeAfter: boolean,
    buffer: Buffer,
    start: number,
    end: number,
    edits: HeaderEdits | null | undefined,
    id: RequestId | undefined,
    replaced: readonly string[] | undefined,
  ): { headBytes: number; flushed: boolean } {
    let flat = replaced ?? clientResponseRawHeaders(head.rawHeaders);
    if (edits && !replaced) flat = editFlatHeaders(flat, edits);
    // The request's id is on the response already: one the upstream sent under that name goes.
    if (id) flat = withoutHeader(flat, id.header);
    const fields: Record<string, string | string[]> = {};
    // `Trailer` announces trailers, which only HTTP/2 and a chunked HTTP/1.1 response carry (Node throws otherwise).
    const trailers = this.#http2 || (head.framing.type === 'chunked' && this.#res.req.httpVersion !== '1.0');
    let headBytes = 17;
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i]!.toLowerCase();
      // Node frames the body for its own protocol; the upstream's framing is taken off below.
      if (name === 'transfer-encoding') continue;
      if (this.#http2 && CONNECTION_SPECIFIC.has(name)) continue;
      if (name === 'trailer' && !trailers) continue;
      const value = flat[i + 1]!;
      const before = fields[name];
      if (before !== undefined && this.#http2 && SINGLE_VALUE.has(name)) continue;
      headBytes += name.length + value.length + 4;
      fields[name] = before === undefined ? value : Array.isArray(before) ? [...before, value] : [before, value];
    }
    if (closeAfter && !this.#http2) fields['connection'] = 'close';
    if (head.framing.type === 'chunked') this.#decoder = new ChunkedDecoder();
    const reason = this.#http2 ? '' : head.reason;
    if (reason === '') this.#res.writeHead(head.status, fields);
    else this.#res.writeHead(head.status, reason, fields);
    this.#flushed = true;
    if (end > start) this.body(buffer.subarray(start, end));
    return { headBytes, flushed: this.#flushed };
  }

  /** Response body bytes as the upstream framed them; false when the client's buffer is full (wait for 'drain'). */
  body(chunk: Buffer): boolean {
    this.#flushed = true;
    if (this.#decoder) this.#decoder.decode(chunk, this.#write);
    else this.#write(chunk);
    return this.#flushed;
  }

  /**
   * Whether bytes written are still queued by reference (Node's response, or
   * the HTTP/2 stream under it, has not handed them on): the upstream socket
   * must then read into a new buffer, not over them (UpstreamOwner).
   */
  holds(): boolean {
    return this.#res.writableLength > 0;
  }

  /**
   * The body is complete: its trailers, then the end. Trailers go where the
   * client's framing can carry them: HTTP/2, or a chunked HTTP/1.1 response
   * (not to an HTTP/1.0 client, nor after a Content-Length).
   */
  end(): void {
    const res = this.#res;
    if (res.writableEnded) return;
    const trailers = this.#decoder?.trailers();
    if (trailers && (this.#http2 || res.chunkedEncoding)) {
      const kept: Record<string, string> = {};
      for (const [name, value] of Object.entries(trailers)) if (mayTrail(name)) kept[name] = value;
      if (Object.keys(kept).length > 0) res.addTrailers(kept);
    }
    res.end();
  }
}
