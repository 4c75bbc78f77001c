/**
 * The fast path's heads on the way out, written as bytes: the upstream
 * request head and the client response head, by the rules of headers.ts
 * (hop-by-hop headers dropped, X-Forwarded-For and Via appended to, the
 * X-Forwarded-* headers added). A header line already in the canonical
 * `Name: value` form is copied as it came; any other is rewritten so.
 *
 * A Connection header naming other headers, or several X-Forwarded-For or
 * Via lines to join (both rare), take headers.ts's own string functions
 * instead: one implementation of those rules, not two.
 * test/unit/listener/http1/head-rewrite.test.ts checks both ways give the same bytes.
 */
import { STATUS_CODES } from 'node:http';
import {
  HOP_BY_HOP_NAMES,
  REQUEST_ONLY_DROPPED_NAMES,
  VIA as VIA_HOP,
  clientResponseRawHeaders,
  upstreamRequestHeaders,
  type ForwardedFor,
} from '../headers.ts';
import type { RequestId } from '../request-id.ts';
import {
  HOST,
  HeadWriter,
  KIND,
  X_REQUEST_ID,
  equalsIgnoreCase,
  LINE_END,
  NAME_END,
  NAME_START,
  OTHER,
  SP,
  SPAN,
  VALUE_END,
  VALUE_START,
  VIA,
  X_FORWARDED_FOR,
  X_FORWARDED_HOST,
  X_FORWARDED_PROTO,
  headerKind,
} from './bytes.ts';
import { editFlatHeaders, type HeaderEdits } from '../../routing/header-edits.ts';
import type { RequestHead } from './request-head.ts';
import type { ResponseHead } from './response-head.ts';

/** Kinds of header to drop, from the names headers.ts gives (each must be a kind bytes.ts knows). */
function kinds(names: readonly string[]): Uint8Array {
  const dropped = new Uint8Array(32);
  for (const name of names) {
    const kind = headerKind(Buffer.from(name, 'latin1'), 0, name.length);
    if (kind === OTHER) throw new Error(`bytes.ts does not know the header ${name}`);
    dropped[kind] = 1;
  }
  return dropped;
}
const DROPPED_FROM_RESPONSE = kinds(HOP_BY_HOP_NAMES);
const DROPPED_FROM_REQUEST = kinds([...HOP_BY_HOP_NAMES, ...REQUEST_ONLY_DROPPED_NAMES]);

const writer = new HeadWriter();
const latin1 = (text: string) => Buffer.from(text, 'latin1');
const COLON_SPACE = latin1(': ');
const CRLF = latin1('\r\n');
const COMMA_SPACE = latin1(', ');
const FORWARDED_FOR = latin1('x-forwarded-for: ');
const FORWARDED_PROTO_HTTP = latin1('x-forwarded-proto: http\r\n');
const FORWARDED_PROTO_HTTPS = latin1('x-forwarded-proto: https\r\n');
const FORWARDED_HOST = latin1('x-forwarded-host: ');
const VIA_NAME = latin1('via: ');
const OUR_HOP = latin1(`${VIA_HOP}\r\n`);
const CHUNKED_UP = latin1('Transfer-Encoding: chunked\r\n');
const TRANSFER_ENCODING_NAME = latin1('Transfer-Encoding: ');
const CLOSE_AND_END = latin1('Connection: close\r\n\r\n');
const KEEP_ALIVE_AND_END = latin1('Connection: keep-alive\r\n\r\n');

/** Who the requests of a client connection come from, the address also as bytes: made once per connection. */
export interface Forwarding extends ForwardedFor {
  readonly clientIpBytes: Buffer;
}

export function forwarding(clientIp: string, proto: ForwardedFor['proto']): Forwarding {
  return { clientIp, proto, clientIpBytes: latin1(clientIp) };
}

/**
 * Copies the headers of `spans` not dropped, coalescing canonical lines that
 * follow each other into one copy. The head's buffer is passed to each call
 * rather than kept: storing a new buffer in this long-lived object on every
 * head would cost a write-barrier slow path each time.
 */
class LineCopier {
  #from = 0;
  #to = 0;

  start(): this {
    this.#from = this.#to = 0;
    return this;
  }

  line(buffer: Buffer, spans: readonly number[], at: number): void {
    const nameStart = spans[at + NAME_START]!;
    const nameEnd = spans[at + NAME_END]!;
    const valueStart = spans[at + VALUE_START]!;
    const valueEnd = spans[at + VALUE_END]!;
    const lineEnd = spans[at + LINE_END]!;
    if (valueStart === nameEnd + 2 && buffer[nameEnd + 1] === SP && valueEnd === lineEnd) {
      if (this.#to !== nameStart) this.flush(buffer).#from = nameStart;
      this.#to = lineEnd + 2;
      return;
    }
    this.flush(buffer);
    writer.bytes(buffer, nameStart, nameEnd).all(COLON_SPACE).bytes(buffer, valueStart, valueEnd).all(CRLF);
  }

  flush(buffer: Buffer): this {
    if (this.#to > this.#from) writer.bytes(buffer, this.#from, this.#to);
    this.#from = this.#to = 0;
    return this;
  }
}

const lineCopier = new LineCopier();

/**
 * What a route changes on the way up: the target (`strip_prefix`), headers
 * (`request_headers`), and header lines sluice adds (the request id).
 * Absent for a plain request, which then takes the byte copy.
 */
export interface RequestEdits {
  target?: string;
  headers?: HeaderEdits | null;
  /** Every header line to send, already rewritten (a request hook edited them): replaces the rules' output. */
  flat?: readonly string[];
}

/**
 * The request head for the upstream, with the X-Forwarded-* and Via headers
 * (once per request: retries reuse it). `addedLine`: a whole header line
 * sluice adds (a new request id).
 */
export function upstreamRequestHead(
  head: RequestHead,
  forwarded: Forwarding,
  edits?: RequestEdits,
  added?: RequestId,
): Buffer {
  if (head.connectionNamesOthers || head.repeatsForwarding || edits !== undefined) {
    // Routes that rewrite take headers.ts's string rules, then their edits: one implementation of each rule.
    const last = `${added ? added.line() : ''}${head.chunked ? 'Transfer-Encoding: chunked\r\n' : ''}`;
    let flat = edits?.flat ?? upstreamRequestHeaders(head.rawHeaders, forwarded);
    if (edits?.headers && edits.flat === undefined) flat = editFlatHeaders(flat, edits.headers);
    return fromStrings(`${head.method} ${edits?.target ?? head.target} HTTP/1.1\r\n`, flat, last);
  }
  const { buffer, spans } = head;
  // A generous bound: lines rewritten to `Name: value` grow by a byte at most, the Host value is
  // written twice, X-Forwarded-For and Via values once more, then a few constant lines.
  writer
    .begin(3 * head.headLength + forwarded.clientIp.length + (added ? added.lineLength : 0) + 256)
    .bytes(buffer, 0, head.requestLineLength);
  const copier = lineCopier.start();
  let forwardedFor = -1;
  let via = -1;
  let hasProto = false;
  let hasForwardedHost = false;
  let host = -1;
  for (let h = 0; h < head.headerCount; h++) {
    const at = h * SPAN;
    const kind = spans[at + KIND]!;
    if (DROPPED_FROM_REQUEST[kind] === 1) {
      copier.flush(buffer);
      continue;
    }
    // X-Forwarded-For and Via (one of each at most here) are extended and written last.
    if (kind === X_FORWARDED_FOR || kind === VIA) {
      copier.flush(buffer);
      if (kind === X_FORWARDED_FOR) forwardedFor = at;
      else via = at;
      continue;
    }
    if (kind === X_FORWARDED_PROTO) hasProto = true;
    else if (kind === X_FORWARDED_HOST) hasForwardedHost = true;
    else if (kind === HOST) host = at;
    copier.line(buffer, spans, at);
  }
  copier.flush(buffer);
  writer.all(FORWARDED_FOR);
  if (forwardedFor !== -1)
    writer.bytes(buffer, spans[forwardedFor + VALUE_START]!, spans[forwardedFor + VALUE_END]!).all(COMMA_SPACE);
  writer.all(forwarded.clientIpBytes).all(CRLF);
  if (!hasProto) writer.all(forwarded.proto === 'http' ? FORWARDED_PROTO_HTTP : FORWARDED_PROTO_HTTPS);
  if (!hasForwardedHost && host !== -1)
    writer
      .all(FORWARDED_HOST)
      .bytes(buffer, spans[host + VALUE_START]!, spans[host + VALUE_END]!)
      .all(CRLF);
  writer.all(VIA_NAME);
  if (via !== -1) writer.bytes(buffer, spans[via + VALUE_START]!, spans[via + VALUE_END]!).all(COMMA_SPACE);
  writer.all(OUR_HOP);
  if (added) writer.line(added);
  // Transfer-Encoding is hop-by-hop, but the chunks go up as the client framed them.
  if (head.chunked) writer.all(CHUNKED_UP);
  return writer.all(CRLF).finish();
}

/** By status code (three digits, so at most 1000 of them). */
const statusLines: Buffer[] = [];
function statusLine(status: number): Buffer {
  return (statusLines[status] ??= latin1(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`));
}

/**
 * The response head for the client, followed by `body[start, end)` (the
 * body bytes that came with the head, when few) so that both leave in one
 * write.
 */
export function clientResponseHead(
  head: ResponseHead,
  closeAfter: boolean,
  body: Buffer,
  start: number,
  end: number,
  edits?: HeaderEdits | null,
  id?: RequestId,
  /** Every header line to send, already rewritten (a response hook edited them). */
  replaced?: readonly string[],
): Buffer {
  // A body passed through as the upstream encoded it (chunked, or read until close) keeps its codings.
  const transferEncoding =
    head.transferEncoding !== undefined && head.framing.type !== 'none' ? head.transferEncoding : undefined;
  if (head.connectionNamesOthers || edits || replaced) {
    const framing = transferEncoding !== undefined ? `Transfer-Encoding: ${transferEncoding}\r\n` : '';
    const last = `${id ? id.line() : ''}${framing}Connection: ${closeAfter ? 'close' : 'keep-alive'}\r\n`;
    let flat = replaced ?? clientResponseRawHeaders(head.rawHeaders);
    if (edits && !replaced) flat = editFlatHeaders(flat, edits);
    // The response carries the request's id: an id the upstream sent under that name is replaced.
    if (id) flat = withoutHeader(flat, id.header);
    const text = fromStrings(statusLine(head.status).toString('latin1'), flat, last);
    return Buffer.concat([text, body.subarray(start, end)]);
  }
  const { buffer, spans } = head;
  const status = statusLine(head.status);
  const transferEncodingBytes =
    transferEncoding === undefined ? 0 : TRANSFER_ENCODING_NAME.length + transferEncoding.length + 2;
  const bound =
    status.length + 3 * head.headLength + transferEncodingBytes + (id ? id.lineLength : 0) + KEEP_ALIVE_AND_END.length;
  writer.begin(bound + (end - start)).all(status);
  const copier = lineCopier.start();
  // The default name is a known kind (a test of the kind); another is compared by name.
  const idName = id?.header;
  const idKind = idName === 'x-request-id' ? X_REQUEST_ID : OTHER;
  for (let h = 0; h < head.headerCount; h++) {
    const at = h * SPAN;
    const kind = spans[at + KIND]!;
    if (DROPPED_FROM_RESPONSE[kind] === 1) copier.flush(buffer);
    else if (
      idKind !== OTHER
        ? kind === idKind
        : idName !== undefined && equalsIgnoreCase(buffer, spans[at + NAME_START]!, spans[at + NAME_END]!, idName)
    ) {
      copier.flush(buffer);
    } else copier.line(buffer, spans, at);
  }
  copier.flush(buffer);
  if (id) writer.line(id);
  if (transferEncoding !== undefined) writer.all(TRANSFER_ENCODING_NAME).latin1(transferEncoding).all(CRLF);
  return writer
    .all(closeAfter ? CLOSE_AND_END : KEEP_ALIVE_AND_END)
    .bytes(body, start, end)
    .finish();
}

export function withoutHeader(flat: readonly string[], lowercaseName: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2)
    if (flat[i]!.toLowerCase() !== lowercaseName) out.push(flat[i]!, flat[i + 1]!);
  return out;
}

/** A head from a start line, `[name, value, …]` and the lines that end it (the blank line is added). */
function fromStrings(startLine: string, flat: readonly string[], last: string): Buffer {
  let text = startLine;
  for (let i = 0; i < flat.length; i += 2) text += `${flat[i]}: ${flat[i + 1]}\r\n`;
  return Buffer.from(`${text}${last}\r\n`, 'latin1');
}
