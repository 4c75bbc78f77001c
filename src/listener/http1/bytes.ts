/**
 * Byte-level pieces shared by the fast path's head parsers and writers.
 * Heads are read and rewritten as bytes, never as strings: a header the
 * proxy does not act on is copied from the buffer it arrived in, so a
 * request costs no string, regex or Set lookup per header line (they were
 * most of the fast path's instructions, measured with callgrind).
 */

export const CR = 0x0d;
export const LF = 0x0a;
export const SP = 0x20;
export const HTAB = 0x09;
export const COLON = 0x3a;
export const COMMA = 0x2c;

/** A class for each of the 256 byte values. */
function table(classOf: (byte: number) => number): Uint8Array {
  const classes = new Uint8Array(256);
  for (let b = 0; b < 256; b++) classes[b] = classOf(b);
  return classes;
}
const alphanumeric = (b: number) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
const oneOf = (chars: string) => (b: number) => chars.includes(String.fromCharCode(b));

/** RFC 9110 tchar: the bytes of a header name (1). */
const tokenPunctuation = oneOf("!#$%&'*+-.^_`|~");
export const TOKEN = table((b) => (alphanumeric(b) || tokenPunctuation(b) ? 1 : 0));
/** The bytes of an origin-form target the fast path takes (1): unreserved, sub-delims, ":@/?%". */
const targetPunctuation = oneOf("-._~!$&'()*+,;=:@/?%");
export const TARGET = table((b) => (alphanumeric(b) || targetPunctuation(b) ? 1 : 0));

/** Classes of a header value's bytes: refused, part of the value, whitespace (trimmed at the ends), the CR that ends it. */
export const REFUSED = 0;
export const VALUE_BYTE = 1;
export const WHITESPACE = 2;
export const END_OF_LINE = 3;
const valueClasses = (accepts: (byte: number) => boolean) =>
  table((b) => (b === CR ? END_OF_LINE : b === SP || b === HTAB ? WHITESPACE : accepts(b) ? VALUE_BYTE : REFUSED));
/** A request header value: visible ASCII, spaces and tabs (no obs-text: Node's parser decides those). */
export const REQUEST_VALUE = valueClasses((b) => b >= 0x21 && b <= 0x7e);
/** A response header value, as llhttp takes it: obs-text (0x80-0xff) too. */
export const RESPONSE_VALUE = valueClasses((b) => (b >= 0x21 && b <= 0x7e) || b >= 0x80);

/** The header names the fast path acts on; every other name is OTHER and passes through. */
export const OTHER = 0;
export const HOST = 1;
export const CONTENT_LENGTH = 2;
export const TRANSFER_ENCODING = 3;
export const CONNECTION = 4;
export const VIA = 5;
export const X_FORWARDED_FOR = 6;
export const X_FORWARDED_PROTO = 7;
export const X_FORWARDED_HOST = 8;
export const KEEP_ALIVE = 9;
export const PROXY_CONNECTION = 10;
export const TE = 11;
export const UPGRADE = 12;
export const EXPECT = 13;
export const HTTP2_SETTINGS = 14;
/** The default request-id header: known, so that finding or replacing it is a kind test. */
export const X_REQUEST_ID = 15;

const KNOWN: [string, number][] = [
  ['host', HOST],
  ['content-length', CONTENT_LENGTH],
  ['transfer-encoding', TRANSFER_ENCODING],
  ['connection', CONNECTION],
  ['via', VIA],
  ['x-forwarded-for', X_FORWARDED_FOR],
  ['x-forwarded-proto', X_FORWARDED_PROTO],
  ['x-forwarded-host', X_FORWARDED_HOST],
  ['keep-alive', KEEP_ALIVE],
  ['proxy-connection', PROXY_CONNECTION],
  ['te', TE],
  ['upgrade', UPGRADE],
  ['expect', EXPECT],
  ['http2-settings', HTTP2_SETTINGS],
  ['x-request-id', X_REQUEST_ID],
];

/** Known names by length: a name is compared only with the few of its own length. */
const BY_LENGTH: { bytes: Buffer; kind: number }[][] = [];
for (const [name, kind] of KNOWN) (BY_LENGTH[name.length] ??= []).push({ bytes: Buffer.from(name, 'latin1'), kind });

/**
 * Which known header `buffer[start, end)` names, ignoring case. Setting bit
 * 0x20 lowercases a letter; no other token byte turns into a letter, digit or
 * `-` that way, so it cannot make a different name match.
 */
export function headerKind(buffer: Uint8Array, start: number, end: number): number {
  const candidates = BY_LENGTH[end - start];
  if (candidates === undefined) return OTHER;
  for (const { bytes, kind } of candidates) {
    let i = 0;
    while (i < bytes.length && (buffer[start + i]! | 0x20) === bytes[i]) i++;
    if (i === bytes.length) return kind;
  }
  return OTHER;
}

/** Whether `buffer[start, end)` is `lower` (given in lower case), ignoring case. */
export function equalsIgnoreCase(buffer: Uint8Array, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const b = buffer[start + i]!;
    const folded = b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
    if (folded !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** The number `buffer[start, end)` spells in 1 to 15 decimal digits, or -1. */
export function decimal(buffer: Uint8Array, start: number, end: number): number {
  if (end <= start || end - start > 15) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = buffer[i]! - 0x30;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/**
 * Where each header of a head lies in its buffer, SPAN numbers per header:
 * name start and end, value start and end (without surrounding whitespace),
 * the CR that ends its line (past the value end when whitespace trails it),
 * and its kind.
 */
export const SPAN = 6;
export const NAME_START = 0;
export const NAME_END = 1;
export const VALUE_START = 2;
export const VALUE_END = 3;
export const LINE_END = 4;
export const KIND = 5;

/** `[name, value, …]` strings of the headers in `spans`: only for what needs strings (tests, rare paths). */
export function headerStrings(buffer: Buffer, spans: readonly number[], count: number): string[] {
  const out: string[] = [];
  for (let h = 0; h < count; h++) {
    const at = h * SPAN;
    out.push(
      buffer.toString('latin1', spans[at + NAME_START], spans[at + NAME_END]),
      buffer.toString('latin1', spans[at + VALUE_START], spans[at + VALUE_END]),
    );
  }
  return out;
}

/** Below this many bytes a JS loop copies faster than a call into C++ does. */
const SHORT_COPY = 48;
const SLAB_BYTES = 64 * 1024;

/**
 * Writes heads straight into a slab, Node's Buffer pool done for heads:
 * each finished head is a view of its slab (no copy), and a slab too full
 * for the next head is left to the views that still use it. Heads are
 * bounded (64 KiB at most), so a head larger than a slab gets one of its own.
 */
export class HeadWriter {
  #slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  #start = 0;
  #at = 0;

  /** Begins a head that will take at most `maxBytes`. */
  begin(maxBytes: number): this {
    if (this.#at + maxBytes > this.#slab.length) {
      this.#slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, maxBytes));
      this.#at = 0;
    }
    this.#start = this.#at;
    return this;
  }

  /** Copies `source[start, end)`. */
  bytes(source: Uint8Array, start: number, end: number): this {
    const slab = this.#slab;
    let at = this.#at;
    if (end - start < SHORT_COPY) for (let i = start; i < end; i++) slab[at++] = source[i]!;
    else at += (source as Buffer).copy(slab, at, start, end);
    this.#at = at;
    return this;
  }

  /** Copies all of `source` (the constant pieces of a head, encoded once). */
  all(source: Uint8Array): this {
    return this.bytes(source, 0, source.length);
  }

  /** Writes `text`, whose characters are all below 256. */
  latin1(text: string): this {
    this.#at += this.#slab.write(text, this.#at, 'latin1');
    return this;
  }

  /** Lets `source` write its line at the current end (it returns the new end), without a string in between. */
  line(source: { writeLine(target: Uint8Array, at: number): number }): this {
    this.#at = source.writeLine(this.#slab, this.#at);
    return this;
  }

  /** The head (and what was written after it): a view of the slab. */
  finish(): Buffer {
    // Typed arrays drop writes past their end: a head that outgrew what begin() reserved must not go out cut.
    if (this.#at > this.#slab.length)
      throw new Error(`head of ${this.#at - this.#start} bytes outgrew its reservation`);
    return this.#slab.subarray(this.#start, this.#at);
  }
}

/** What a Connection value's comma-separated options say, as bits. */
export const OPTION_CLOSE = 1;
export const OPTION_KEEP_ALIVE = 2;
/** An option naming some other header: a hop-by-hop header the proxy must drop too. */
export const OPTION_OTHER = 4;

export function connectionOptions(buffer: Uint8Array, start: number, end: number): number {
  let options = 0;
  let at = start;
  while (at <= end) {
    let stop = at;
    while (stop < end && buffer[stop] !== COMMA) stop++;
    let first = at;
    let last = stop;
    while (first < last && (buffer[first] === SP || buffer[first] === HTAB)) first++;
    while (last > first && (buffer[last - 1] === SP || buffer[last - 1] === HTAB)) last--;
    if (equalsIgnoreCase(buffer, first, last, 'close')) options |= OPTION_CLOSE;
    else if (equalsIgnoreCase(buffer, first, last, 'keep-alive')) options |= OPTION_KEEP_ALIVE;
    else if (last > first) options |= OPTION_OTHER;
    at = stop + 1;
  }
  return options;
}
