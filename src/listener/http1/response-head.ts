/**
 * The upstream response head, parsed as strictly as llhttp (the parser
 * behind undici and Node's http client) parses it, and the body framing of
 * RFC 9112 §6.3. An upstream whose head or framing is invalid is answered
 * 502 and its connection closed. test/unit/listener/http1/http1-differential.test.ts compares
 * this parser with llhttp on generated responses: same verdict, same framing.
 */

import {
  CONNECTION,
  CONTENT_LENGTH,
  CR,
  KIND,
  LF,
  OPTION_CLOSE,
  OPTION_KEEP_ALIVE,
  OPTION_OTHER,
  RESPONSE_VALUE,
  SP,
  SPAN,
  TRANSFER_ENCODING,
  VALUE_END,
  VALUE_START,
  connectionOptions,
  decimal,
  headerStrings,
} from './bytes.ts';
import { HeaderLines, INCOMPLETE as LINES_INCOMPLETE, INVALID as LINES_INVALID } from './header-lines.ts';

export type Framing =
  | { type: 'none' }
  | { type: 'length'; length: number }
  | { type: 'chunked' }
  /** Read until the upstream closes (HTTP/1.0 style): the client connection closes after it. */
  | { type: 'close' };

const NONE: Framing = Object.freeze({ type: 'none' });
const CHUNKED: Framing = Object.freeze({ type: 'chunked' });
const UNTIL_CLOSE: Framing = Object.freeze({ type: 'close' });

export class ResponseHead {
  /**
   * The buffer the head was read from (it starts at offset 0). It may be a
   * view of the upstream socket's read buffer, which the socket's next read
   * overwrites (upstream-sockets.ts): `rawHeaders`, `reason` and the client's
   * head must be made while the read that brought it is handled.
   */
  readonly buffer: Buffer;
  readonly status: number;
  /** The version of the status line: `1.1`, `1.0`, or (llhttp accepts them, never reused) `0.9`, `2.0`. */
  readonly version: string;
  /** Where each header lies in `buffer` (bytes.ts). */
  readonly spans: readonly number[];
  readonly headerCount: number;
  /** Every Transfer-Encoding value, joined: what a body passed through as framed is announced with. */
  readonly transferEncoding: string | undefined;
  readonly framing: Framing;
  /** The upstream connection may carry another request after this response. */
  readonly reusable: boolean;
  /** Connection names other headers, which must be dropped on the way to the client too. */
  readonly connectionNamesOthers: boolean;
  readonly headLength: number;
  readonly #reasonStart: number;
  readonly #reasonEnd: number;
  #rawHeaders: string[] | undefined;

  constructor(fields: Omit<ResponseHead, 'rawHeaders' | 'reason'>, reasonStart: number, reasonEnd: number) {
    this.buffer = fields.buffer;
    this.status = fields.status;
    this.version = fields.version;
    this.spans = fields.spans;
    this.headerCount = fields.headerCount;
    this.transferEncoding = fields.transferEncoding;
    this.framing = fields.framing;
    this.reusable = fields.reusable;
    this.connectionNamesOthers = fields.connectionNamesOthers;
    this.headLength = fields.headLength;
    this.#reasonStart = reasonStart;
    this.#reasonEnd = reasonEnd;
  }

  get reason(): string {
    return this.buffer.toString('latin1', this.#reasonStart, this.#reasonEnd);
  }

  get rawHeaders(): string[] {
    return (this.#rawHeaders ??= headerStrings(this.buffer, this.spans, this.headerCount));
  }
}

export type ResponseParse =
  { kind: 'incomplete' } | { kind: 'invalid'; reason: string } | { kind: 'ok'; head: ResponseHead };

const INCOMPLETE: ResponseParse = { kind: 'incomplete' };
const invalid = (reason: string): ResponseParse => ({ kind: 'invalid', reason });

const HTTP_SLASH = Buffer.from('HTTP/', 'latin1');
/** llhttp accepts these versions in a status line. */
const VERSIONS = ['0.9', '1.0', '1.1', '2.0'];
const lines = new HeaderLines();

function versionOf(buffer: Buffer, at: number): string | undefined {
  for (const version of VERSIONS) {
    if (buffer[at] === version.charCodeAt(0) && buffer[at + 1] === 0x2e && buffer[at + 2] === version.charCodeAt(2))
      return version;
  }
  return undefined;
}

const isDigit = (b: number | undefined) => b !== undefined && b >= 0x30 && b <= 0x39;

/**
 * Reads a response head from the start of `buffer`: the status line
 * `HTTP/x.y SP 3DIGIT [SP reason] CRLF` (the reason may hold any byte but CR
 * and LF, as llhttp allows), then the header lines.
 */
export function parseResponseHead(buffer: Buffer, maxHeadBytes: number, requestMethod: string): ResponseParse {
  const length = buffer.length;
  const waitOrTooLarge = () => (length > maxHeadBytes ? invalid('response head too large') : INCOMPLETE);
  // "HTTP/x.y SP ddd" is 12 bytes; then SP reason, or the line's end.
  if (length < 13) {
    for (let i = 0; i < length && i < HTTP_SLASH.length; i++)
      if (buffer[i] !== HTTP_SLASH[i]) return invalid('status line');
    return INCOMPLETE;
  }
  for (let i = 0; i < HTTP_SLASH.length; i++) if (buffer[i] !== HTTP_SLASH[i]) return invalid('status line');
  const version = versionOf(buffer, 5);
  if (!version || buffer[8] !== SP || !isDigit(buffer[9]) || !isDigit(buffer[10]) || !isDigit(buffer[11]))
    return invalid('status line');
  const status = (buffer[9]! - 0x30) * 100 + (buffer[10]! - 0x30) * 10 + (buffer[11]! - 0x30);
  let pos = 12;
  let reasonStart = pos;
  if (buffer[pos] === SP) {
    reasonStart = ++pos;
    while (pos < length && buffer[pos] !== CR && buffer[pos] !== LF) pos++;
  }
  const reasonEnd = pos;
  if (pos + 1 >= length) return waitOrTooLarge();
  if (buffer[pos] !== CR || buffer[pos + 1] !== LF) return invalid('status line');
  const headLength = lines.scan(buffer, pos + 2, RESPONSE_VALUE, Infinity);
  if (headLength === LINES_INCOMPLETE) return waitOrTooLarge();
  if (headLength === LINES_INVALID) return invalid('header line');
  const spans = lines.spans();
  let contentLength = -1;
  let transferEncoding: string | undefined;
  let connection = 0;
  for (let h = 0; h < lines.count; h++) {
    const at = h * SPAN;
    const valueStart = spans[at + VALUE_START]!;
    const valueEnd = spans[at + VALUE_END]!;
    switch (spans[at + KIND]) {
      case CONTENT_LENGTH:
        if (contentLength !== -1) return invalid('duplicate content-length');
        contentLength = decimal(buffer, valueStart, valueEnd);
        if (contentLength === -1) return invalid('content-length');
        break;
      case TRANSFER_ENCODING: {
        const value = buffer.toString('latin1', valueStart, valueEnd);
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
        break;
      }
      case CONNECTION:
        connection |= connectionOptions(buffer, valueStart, valueEnd);
        break;
    }
  }
  if (transferEncoding !== undefined && contentLength !== -1) return invalid('content-length with transfer-encoding');
  const framing = framingOf(status, requestMethod, contentLength, transferEncoding);
  // llhttp's rule: 1.1 persists unless `close`; any other version only with `keep-alive` (then `close` is ignored).
  const keepAlive = version === '1.1' ? (connection & OPTION_CLOSE) === 0 : (connection & OPTION_KEEP_ALIVE) !== 0;
  const head = new ResponseHead(
    {
      buffer,
      status,
      version,
      spans: lines.take(),
      headerCount: lines.count,
      transferEncoding,
      framing,
      reusable: keepAlive && framing.type !== 'close',
      connectionNamesOthers: (connection & OPTION_OTHER) !== 0,
      headLength,
    },
    reasonStart,
    reasonEnd,
  );
  return { kind: 'ok', head };
}

function framingOf(
  status: number,
  method: string,
  contentLength: number,
  transferEncoding: string | undefined,
): Framing {
  if (method === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304) return NONE;
  if (transferEncoding !== undefined) {
    const codings = transferEncoding.split(',');
    return codings[codings.length - 1]!.trim().toLowerCase() === 'chunked' ? CHUNKED : UNTIL_CLOSE;
  }
  if (contentLength !== -1) return { type: 'length', length: contentLength };
  return UNTIL_CLOSE;
}
