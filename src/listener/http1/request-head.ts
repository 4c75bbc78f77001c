/**
 * The strict request-head parser of the fast path. It accepts only a plain
 * subset of HTTP/1.1 — origin-form targets, tokens for names, visible ASCII
 * for values, at most one Content-Length or exactly `Transfer-Encoding:
 * chunked` (never both), no Upgrade or Expect — and says `handoff` for
 * everything else. A handed-off
 * connection goes to Node's own parser (llhttp), which accepts, refuses
 * (400/431) or tunnels it as before: the fast path never widens what sluice
 * accepts. test/unit/listener/http1/http1-differential.test.ts checks that every head accepted
 * here is accepted by llhttp and framed the same.
 */

import {
  CONNECTION,
  CONTENT_LENGTH,
  EXPECT,
  HOST,
  HTTP2_SETTINGS,
  KEEP_ALIVE,
  KIND,
  NAME_END,
  NAME_START,
  OTHER,
  X_REQUEST_ID,
  OPTION_CLOSE,
  OPTION_OTHER,
  PROXY_CONNECTION,
  REQUEST_VALUE,
  SP,
  SPAN,
  TARGET,
  TE,
  TRANSFER_ENCODING,
  UPGRADE,
  VALUE_END,
  VALUE_START,
  VIA,
  X_FORWARDED_FOR,
  connectionOptions,
  decimal,
  equalsIgnoreCase,
  headerStrings,
} from './bytes.ts';
import { HeaderLines, INCOMPLETE as LINES_INCOMPLETE, INVALID as LINES_INVALID } from './header-lines.ts';
import { joinedHeader } from '../../routing/route-table.ts';

/** What a RequestHead is made of: its fields, without what it works out from them. */
type RequestHeadFields = Omit<RequestHead, 'rawHeaders' | 'host' | 'header' | 'find' | 'detached'>;

export class RequestHead {
  /**
   * The buffer the head was read from (it starts at offset 0). It may be a
   * view of the thread's shared read buffer (direct-reads.ts), valid only
   * while the read that brought it is handled: whatever is needed later
   * (`rawHeaders`, the upstream head) must be made by then.
   */
  readonly buffer: Buffer;
  readonly method: string;
  /** The request target as sent (origin-form). */
  readonly target: string;
  /** Where each header lies in `buffer` (bytes.ts). */
  readonly spans: readonly number[];
  readonly headerCount: number;
  /** Body bytes that follow the head (0 without Content-Length, and when chunked). */
  readonly contentLength: number;
  /** The body is chunked (`Transfer-Encoding: chunked`): it ends where its last chunk says. */
  readonly chunked: boolean;
  /** The client asked to close after this request (`Connection: close`). */
  readonly close: boolean;
  /** Connection names other headers, which must be dropped on the way up too. */
  readonly connectionNamesOthers: boolean;
  /** A Via header is present (the request may already have passed through a sluice). */
  readonly hasVia: boolean;
  /** Several X-Forwarded-For or several Via lines, whose values are joined on the way up. */
  readonly repeatsForwarding: boolean;
  /** Bytes of the request line, including its CRLF. */
  readonly requestLineLength: number;
  /** Bytes of the head, including the blank line that ends it. */
  readonly headLength: number;
  #rawHeaders: string[] | undefined;

  constructor(fields: RequestHeadFields) {
    this.buffer = fields.buffer;
    this.method = fields.method;
    this.target = fields.target;
    this.spans = fields.spans;
    this.headerCount = fields.headerCount;
    this.contentLength = fields.contentLength;
    this.chunked = fields.chunked;
    this.close = fields.close;
    this.connectionNamesOthers = fields.connectionNamesOthers;
    this.hasVia = fields.hasVia;
    this.repeatsForwarding = fields.repeatsForwarding;
    this.requestLineLength = fields.requestLineLength;
    this.headLength = fields.headLength;
  }

  /** The same head over a copy of its bytes, for what must outlive the read that brought them. */
  detached(): RequestHead {
    // The spread copies the fields only, which is what the constructor takes (#rawHeaders is made again).
    const buffer = Buffer.from(this.buffer.subarray(0, this.headLength));
    const copy = new RequestHead({ ...(this as RequestHeadFields), buffer });
    return copy;
  }

  /** The Host header's value (the parser requires exactly one). */
  get host(): string | undefined {
    const spans = this.spans;
    for (let h = 0; h < this.headerCount; h++) {
      const at = h * SPAN;
      if (spans[at + KIND] === HOST)
        return this.buffer.toString('latin1', spans[at + VALUE_START], spans[at + VALUE_END]);
    }
    return undefined;
  }

  /** The value of the first header named `lowercaseName`, read from the bytes (no header strings made). */
  find(lowercaseName: string): string | undefined {
    const spans = this.spans;
    const kind = lowercaseName === 'x-request-id' ? X_REQUEST_ID : OTHER;
    for (let h = 0; h < this.headerCount; h++) {
      const at = h * SPAN;
      const named =
        kind !== OTHER
          ? spans[at + KIND] === kind
          : equalsIgnoreCase(this.buffer, spans[at + NAME_START]!, spans[at + NAME_END]!, lowercaseName);
      if (named) {
        return this.buffer.toString('latin1', spans[at + VALUE_START], spans[at + VALUE_END]);
      }
    }
    return undefined;
  }

  /** A header's value, several lines joined with ", ". */
  header(nameLowercase: string): string | undefined {
    return joinedHeader(this.rawHeaders, nameLowercase);
  }

  /** `[name, value, …]` in the client's order and case (values without surrounding whitespace): made only when asked for. */
  get rawHeaders(): string[] {
    return (this.#rawHeaders ??= headerStrings(this.buffer, this.spans, this.headerCount));
  }
}

export type HeadParse =
  { kind: 'incomplete' } | { kind: 'handoff'; reason: string } | { kind: 'ok'; head: RequestHead };

const INCOMPLETE: HeadParse = { kind: 'incomplete' };
const handoff = (reason: string): HeadParse => ({ kind: 'handoff', reason });

const MAX_HEADERS = 100;
const SLASH = 0x2f;
const VERSION = Buffer.from('HTTP/1.1\r\n', 'latin1');
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'];

/** The method `buffer[0, end)` names, if the fast path takes it. */
function methodOf(buffer: Buffer, end: number): string | undefined {
  for (const method of METHODS) {
    if (method.length !== end) continue;
    let i = 0;
    while (i < end && buffer[i] === method.charCodeAt(i)) i++;
    if (i === end) return method;
  }
  return undefined;
}

const lines = new HeaderLines();

/**
 * Reads a request head from the start of `buffer`: `incomplete` until its
 * blank line has come (unless what came already cannot be taken), `handoff`
 * for anything outside the subset, else the head. `checkedLine`: the request
 * line was already accepted by llhttp (the Node path's head, rewritten in
 * canonical form), so any method and target bytes it took are taken.
 */
export function parseRequestHead(buffer: Buffer, maxHeadBytes: number, checkedLine = false): HeadParse {
  const length = buffer.length;
  const waitOrTooLarge = () => (length > maxHeadBytes ? handoff('head too large') : INCOMPLETE);
  // Request line: METHOD SP origin-form SP HTTP/1.1 CRLF.
  let pos = 0;
  while (pos < length && buffer[pos]! >= 0x41 && buffer[pos]! <= 0x5a) pos++;
  // A head llhttp has read (`checkedLine`, node-path/): its method and target are whatever llhttp took.
  if (checkedLine) while (pos < length && buffer[pos] !== SP) pos++;
  if (pos >= length) return waitOrTooLarge();
  if (buffer[pos] !== SP) return handoff('request line');
  const method = methodOf(buffer, pos) ?? (checkedLine ? buffer.toString('latin1', 0, pos) : undefined);
  if (!method) return handoff('request line');
  const targetStart = ++pos;
  if (pos < length && buffer[pos] !== SLASH) return handoff('request line');
  while (pos < length && TARGET[buffer[pos]!] === 1) pos++;
  if (checkedLine) while (pos < length && buffer[pos] !== SP) pos++;
  if (pos >= length) return waitOrTooLarge();
  if (buffer[pos] !== SP || pos === targetStart) return handoff('request line');
  const targetEnd = pos++;
  for (let i = 0; i < VERSION.length; i++, pos++) {
    if (pos >= length) return waitOrTooLarge();
    if (buffer[pos] !== VERSION[i]) return handoff('request line');
  }
  const requestLineLength = pos;
  const headLength = lines.scan(buffer, pos, REQUEST_VALUE, MAX_HEADERS);
  if (headLength === LINES_INCOMPLETE) return waitOrTooLarge();
  if (headLength === LINES_INVALID) return handoff(lines.error);
  if (headLength > maxHeadBytes) return handoff('head too large');
  const spans = lines.spans();
  let contentLength = -1;
  let host = false;
  let close = false;
  let chunked = false;
  let connectionNamesOthers = false;
  let viaLines = 0;
  let forwardedForLines = 0;
  for (let h = 0; h < lines.count; h++) {
    const at = h * SPAN;
    const valueStart = spans[at + VALUE_START]!;
    const valueEnd = spans[at + VALUE_END]!;
    switch (spans[at + KIND]) {
      case UPGRADE:
      case EXPECT:
      case TE:
      case KEEP_ALIVE:
      case PROXY_CONNECTION:
      case HTTP2_SETTINGS:
        return handoff('header handled by the Node path');
      case CONTENT_LENGTH:
        if (contentLength !== -1) return handoff('content-length');
        contentLength = decimal(buffer, valueStart, valueEnd);
        if (contentLength === -1) return handoff('content-length');
        break;
      case TRANSFER_ENCODING:
        if (chunked || !equalsIgnoreCase(buffer, valueStart, valueEnd, 'chunked')) return handoff('transfer-encoding');
        chunked = true;
        break;
      case HOST:
        if (host) return handoff('duplicate host');
        host = true;
        break;
      case CONNECTION: {
        // Other options name hop-by-hop headers: they are dropped on the way up.
        const options = connectionOptions(buffer, valueStart, valueEnd);
        if (options & OPTION_CLOSE) close = true;
        if (options & OPTION_OTHER) connectionNamesOthers = true;
        break;
      }
      case VIA:
        viaLines++;
        break;
      case X_FORWARDED_FOR:
        forwardedForLines++;
        break;
    }
  }
  if (!host) return handoff('no host');
  // Both: a smuggling attempt; Node's parser answers it 400.
  if (chunked && contentLength !== -1) return handoff('content-length with transfer-encoding');
  return {
    kind: 'ok',
    head: new RequestHead({
      buffer,
      method,
      target: buffer.toString('latin1', targetStart, targetEnd),
      spans: lines.take(),
      headerCount: lines.count,
      contentLength: Math.max(0, contentLength),
      chunked,
      close,
      connectionNamesOthers,
      hasVia: viaLines > 0,
      repeatsForwarding: viaLines > 1 || forwardedForLines > 1,
      requestLineLength,
      headLength,
    }),
  };
}
