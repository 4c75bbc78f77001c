/**
 * The JSON access-log line written straight into a batch's bytes: the common
 * line, whose per-request strings are printable ASCII, costs no string at all.
 *
 * Building the line as a string and then encoding it into the batch cost more
 * than everything else a line does: V8 first flattens the concatenation into a
 * new string, then converts it to UTF-8. Here the runs of fields that repeat
 * from one request to the next (see `Piece`) are kept as bytes and copied, and
 * the values that change on every request (the time, the path, the sizes, the
 * duration, the request id, which a new id writes without ever becoming a
 * string) are written digit by digit and byte by byte.
 *
 * Whatever this path does not take (a value that JSON must escape, a
 * character past ASCII, a number that is not a plain non-negative integer or
 * duration) returns -1, and the caller writes `formatJson`'s string instead:
 * the bytes are the same either way (tested), so the choice never shows.
 */
import { type AccessRecord, clientFields, outcomeFields, processFields, requestFields } from './record.ts';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const ZERO = 0x30;
const LARGEST_INTEGER_DIGITS = 16;

/** A run of fields' JSON as bytes, made again only when one of its values changed since the previous line. */
class Piece {
  #values: readonly unknown[] = [];
  #bytes: Buffer = Buffer.alloc(0);
  readonly #make: (...values: never[]) => string;

  constructor(make: (...values: never[]) => string) {
    this.#make = make;
  }

  bytes(a: unknown, b: unknown, c?: unknown, d?: unknown, e?: unknown, f?: unknown): Buffer {
    const values = this.#values;
    if (
      values[0] === a &&
      values[1] === b &&
      values[2] === c &&
      values[3] === d &&
      values[4] === e &&
      values[5] === f
    ) {
      return this.#bytes;
    }
    this.#values = [a, b, c, d, e, f];
    return (this.#bytes = Buffer.from((this.#make as (...v: unknown[]) => string)(a, b, c, d, e, f)));
  }
}

const processPiece = new Piece(processFields);
const requestPiece = new Piece(requestFields);
const outcomePiece = new Piece(outcomeFields);
const clientPiece = new Piece(clientFields);
const DURATION_KEY = Buffer.from(',"duration_ms":');
const NULL = Buffer.from('null');

let timeSecond = NaN;
/** `{"time":"2026-12-01T21:05:33.` for the second being written. */
let timePrefix: Buffer = Buffer.alloc(0);

/**
 * `value` quoted, checked as it is copied: -1 at the first character that is
 * not printable ASCII or that JSON must escape. What was copied before it is
 * not counted, since the caller then writes nothing.
 */
function writeAscii(out: Buffer, at: number, value: string): number {
  out[at++] = QUOTE;
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit < 0x20 || unit > 0x7e || unit === QUOTE || unit === BACKSLASH) return -1;
    out[at++] = unit;
  }
  out[at++] = QUOTE;
  return at;
}

/** A non-negative safe integer's decimal digits. */
function writeInteger(out: Buffer, at: number, value: number): number {
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  for (let i = at + digits - 1, rest = value; i >= at; i--, rest = Math.floor(rest / 10)) out[i] = ZERO + (rest % 10);
  return at + digits;
}

const isPlainCount = (value: number) => Number.isSafeInteger(value) && value >= 0;

/**
 * Writes `record`'s line at `at`, returning where it ends, or -1 (nothing
 * counted as written) when it is not a common line or `out` lacks the room.
 */
export function encodeJsonLine(record: AccessRecord, out: Buffer, at: number): number {
  const { path, request_id: requestId, bytes_sent: bytesSent } = record;
  const time = Math.trunc(record.time);
  // Rounded to 3 decimals from integer microseconds, as `formatJson` writes it.
  const micros = Math.round(record.duration_ms * 1000);
  if (!isPlainCount(time) || !isPlainCount(bytesSent) || !isPlainCount(micros) || micros >= 1e15) return -1;
  let idLength = NULL.length;
  if (typeof requestId === 'string') idLength = requestId.length + 2;
  else if (requestId !== null) idLength = requestId.valueLength + 2;

  const head = processPiece.bytes(record.pid, record.thread, record.remote_addr, record.method);
  const request = requestPiece.bytes(record.protocol, record.host, record.status);
  const outcome = outcomePiece.bytes(
    record.route,
    record.upstream,
    record.backend,
    record.upstream_status,
    record.attempts,
    record.error,
  );
  const client = clientPiece.bytes(record.user_agent, record.referer);
  const second = Math.floor(time / 1000);
  if (second !== timeSecond) {
    // 'NNNZ' is cut off: the milliseconds are written below.
    timePrefix = Buffer.from(`{"time":"${new Date(second * 1000).toISOString().slice(0, -4)}`);
    timeSecond = second;
  }
  const room =
    timePrefix.length +
    4 +
    head.length +
    path.length +
    2 +
    request.length +
    LARGEST_INTEGER_DIGITS +
    DURATION_KEY.length +
    LARGEST_INTEGER_DIGITS +
    4 +
    outcome.length +
    idLength +
    client.length;
  if (out.length - at < room) return -1;

  out.set(timePrefix, at);
  at += timePrefix.length;
  const milli = time - second * 1000;
  out[at++] = ZERO + Math.floor(milli / 100);
  out[at++] = ZERO + (Math.floor(milli / 10) % 10);
  out[at++] = ZERO + (milli % 10);
  out[at++] = 0x5a; // Z
  out.set(head, at);
  at = writeAscii(out, at + head.length, path);
  if (at < 0) return -1;
  out.set(request, at);
  at = writeInteger(out, at + request.length, bytesSent);
  out.set(DURATION_KEY, at);
  at = writeDuration(out, at + DURATION_KEY.length, micros);
  out.set(outcome, at);
  at += outcome.length;
  if (requestId === null) {
    out.set(NULL, at);
    at += NULL.length;
  } else if (typeof requestId === 'string' || !requestId.generated) {
    // A client's id is its header's text, which may need escaping; a new id is hex digits.
    at = writeAscii(out, at, typeof requestId === 'string' ? requestId : requestId.value);
    if (at < 0) return -1;
  } else {
    out[at++] = QUOTE;
    at = requestId.writeValue(out, at);
    out[at++] = QUOTE;
  }
  out.set(client, at);
  return at + client.length;
}

/** Milliseconds from integer microseconds: `12.346`, `250`, `0.5`, as a JS number prints them. */
function writeDuration(out: Buffer, at: number, micros: number): number {
  const whole = Math.floor(micros / 1000);
  at = writeInteger(out, at, whole);
  let fraction = micros - whole * 1000;
  if (fraction === 0) return at;
  out[at++] = 0x2e; // .
  // Trailing zeros are not written: 0.250 prints as .25.
  let digits = 3;
  while (fraction % 10 === 0) {
    fraction /= 10;
    digits--;
  }
  for (let i = at + digits - 1, rest = fraction; i >= at; i--, rest = Math.floor(rest / 10))
    out[i] = ZERO + (rest % 10);
  return at + digits;
}
