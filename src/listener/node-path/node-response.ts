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

export class NodeResponse {
  readonly #res: ServerResponse;
  #decoder: ChunkedDecoder | undefined;
  readonly #write = (data: Buffer): void => {
    if (data.length > 0) this.#flushed = this.#res.write(data);
  };
  #flushed = true;

  constructor(res: ServerResponse) {
    this.#res = res;
  }

  get res(): ServerResponse {
    return this.#res;
  }

  /** The proxy's own answer; the request id is on the response already (server.ts sets it first). */
  answer(answer: OwnAnswer, close: boolean): void {
    sendOwnAnswer(this.#res, answer, close);
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
    let headBytes = 17;
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i]!.toLowerCase();
      // Node frames the body for its own protocol; the upstream's framing is taken off below.
      if (name === 'transfer-encoding') continue;
      const value = flat[i + 1]!;
      headBytes += name.length + value.length + 4;
      const before = fields[name];
      fields[name] = before === undefined ? value : Array.isArray(before) ? [...before, value] : [before, value];
    }
    if (closeAfter) fields['connection'] = 'close';
    if (head.framing.type === 'chunked') this.#decoder = new ChunkedDecoder();
    this.#res.writeHead(head.status, fields);
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

  /** The body is complete: its trailers, then the end. */
  end(): void {
    const res = this.#res;
    if (res.writableEnded) return;
    const trailers = this.#decoder?.trailers();
    if (trailers && Object.keys(trailers).length > 0) res.addTrailers(trailers);
    res.end();
  }
}
