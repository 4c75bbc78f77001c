/**
 * The strict request-head parser of the fast path. It accepts only a plain
 * subset of HTTP/1.1 — origin-form targets, tokens for names, visible ASCII
 * for values, at most one Content-Length or exactly `Transfer-Encoding:
 * chunked` (never both), no Upgrade or Expect — and says `handoff` for
 * everything else. A handed-off
 * connection goes to Node's own parser (llhttp), which accepts, refuses
 * (400/431) or tunnels it as before: the fast path never widens what sluice
 * accepts. test/http1-differential.test.ts checks that every head accepted
 * here is accepted by llhttp and framed the same.
 */

export interface RequestHead {
  method: string;
  /** The request target as sent (origin-form). */
  target: string;
  /** `[name, value, …]` in the client's order and case (values without surrounding whitespace). */
  rawHeaders: string[];
  /** Body bytes that follow the head (0 without Content-Length, and when chunked). */
  contentLength: number;
  /** The body is chunked (`Transfer-Encoding: chunked`): it ends where its last chunk says. */
  chunked: boolean;
  /** The client asked to close after this request (`Connection: close`). */
  close: boolean;
  /** Bytes of the head, including the blank line that ends it. */
  headLength: number;
}

export type HeadParse =
  | { kind: 'incomplete' }
  | { kind: 'handoff'; reason: string }
  | { kind: 'ok'; head: RequestHead };

const INCOMPLETE: HeadParse = { kind: 'incomplete' };
const handoff = (reason: string): HeadParse => ({ kind: 'handoff', reason });

const END_OF_HEAD = Buffer.from('\r\n\r\n');
const MAX_HEADERS = 100;

const REQUEST_LINE = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH) (\/[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*) HTTP\/1\.1$/;
/** token ":" OWS value OWS — value visible ASCII with inner spaces/tabs (RFC 9110 §5.5, no obs-text). */
const HEADER_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*((?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?)[ \t]*$/;
const DIGITS = /^[0-9]{1,15}$/;

/** Headers the fast path leaves to Node's server: framing it does not do, or answers it does not give. */
const HANDED_OFF = new Set(['upgrade', 'expect', 'te', 'keep-alive', 'proxy-connection', 'http2-settings']);

/** Whether `buffer` (an incomplete head) already holds something Node would refuse: hand it over now. */
function hopeless(buffer: Buffer, maxHeadBytes: number): string | undefined {
  if (buffer.length > maxHeadBytes) return 'head too large';
  const first = buffer[0];
  if (first !== undefined && (first < 0x41 || first > 0x5a)) return 'not a method';
  for (let at = buffer.indexOf(0x0a); at !== -1; at = buffer.indexOf(0x0a, at + 1)) {
    if (buffer[at - 1] !== 0x0d) return 'bare LF';
  }
  return undefined;
}

export function parseRequestHead(buffer: Buffer, maxHeadBytes: number): HeadParse {
  const end = buffer.indexOf(END_OF_HEAD);
  if (end === -1) {
    const reason = hopeless(buffer, maxHeadBytes);
    return reason ? handoff(reason) : INCOMPLETE;
  }
  if (end + 4 > maxHeadBytes) return handoff('head too large');
  const lines = buffer.toString('latin1', 0, end).split('\r\n');
  const requestLine = REQUEST_LINE.exec(lines[0]!);
  if (!requestLine) return handoff('request line');
  if (lines.length - 1 > MAX_HEADERS) return handoff('too many headers');
  const rawHeaders: string[] = [];
  let contentLength = -1;
  let host = false;
  let close = false;
  let chunked = false;
  for (let i = 1; i < lines.length; i++) {
    const header = HEADER_LINE.exec(lines[i]!);
    if (!header) return handoff('header line');
    const name = header[1]!;
    const value = header[2]!;
    const lower = name.toLowerCase();
    if (HANDED_OFF.has(lower)) return handoff(lower);
    switch (lower) {
      case 'content-length':
        if (contentLength !== -1 || !DIGITS.test(value)) return handoff('content-length');
        contentLength = Number(value);
        break;
      case 'transfer-encoding':
        if (chunked || value.toLowerCase() !== 'chunked') return handoff('transfer-encoding');
        chunked = true;
        break;
      case 'host':
        if (host) return handoff('duplicate host');
        host = true;
        break;
      case 'connection':
        // Other options name hop-by-hop headers: they are dropped on the way up (headers.ts).
        for (const token of value.split(',')) if (token.trim().toLowerCase() === 'close') close = true;
        break;
    }
    rawHeaders.push(name, value);
  }
  if (!host) return handoff('no host');
  // Both: a smuggling attempt; Node's parser answers it 400.
  if (chunked && contentLength !== -1) return handoff('content-length with transfer-encoding');
  return {
    kind: 'ok',
    head: { method: requestLine[1]!, target: requestLine[2]!, rawHeaders, contentLength: Math.max(0, contentLength), chunked, close, headLength: end + 4 },
  };
}
