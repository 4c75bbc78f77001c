/**
 * One request's facts as the access log keeps them, and the two ways of
 * writing them as a line: JSON (one object a line, for machines) and nginx's
 * `combined` (byte for byte, so the tools that read nginx's logs read ours).
 *
 * Both build their string by hand: JSON.stringify only of the string values
 * (it escapes control characters and lone surrogates, so any input gives
 * valid JSON), and the time text cached for the second it belongs to. The
 * common JSON line is written as bytes by json-bytes.ts, without a string.
 */
export interface AccessRecord {
  /** Epoch ms when the request started (Date.now()). */
  time: number;
  pid: number;
  /** The listener thread's id. */
  thread: number;
  remote_addr: string;
  method: string;
  /** With the query, as received. */
  path: string;
  /** e.g. 'HTTP/1.1'. */
  protocol: string;
  /** As the client sent it. */
  host: string | null;
  /** 499 for a client abort. */
  status: number;
  /** Response body bytes sent to the client. */
  bytes_sent: number;
  duration_ms: number;
  /** The route's name, or its index as a string; null when none matched. */
  route: string | null;
  upstream: string | null;
  /** 'address:port'. */
  backend: string | null;
  upstream_status: number | null;
  /** 0 for the proxy's own answers. */
  attempts: number;
  /** The failure's code. */
  error: string | null;
  request_id: string | RequestIdText | null;
  user_agent: string | null;
  referer: string | null;
}

/** A request id that writes its own bytes (request-id.ts): a new id becomes a string only if a line needs one. */
export interface RequestIdText {
  readonly value: string;
  /** Made here (hex digits), not sent by the client. */
  readonly generated: boolean;
  readonly valueLength: number;
  writeValue(target: Uint8Array, at: number): number;
}

const idText = (id: string | RequestIdText | null): string | null =>
  id === null || typeof id === 'string' ? id : id.value;

/** A string value as JSON; null (or a value missing at run time) as null. */
// What JSON must escape ('"', '\\', control characters) and surrogates, whose lone halves JSON.stringify escapes.
// eslint-disable-next-line no-control-regex -- finding control characters is this expression's job
const NEEDS_JSON_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A JSON string: most values (paths, addresses, ids) need no escape, and a regex test is cheaper than JSON.stringify. */
function str(value: string | null): string {
  if (value == null) return 'null';
  return NEEDS_JSON_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
}

/** NaN and Infinity have no JSON form: null keeps the line parseable. */
function num(value: number | null): string {
  return value != null && Number.isFinite(value) ? `${value}` : 'null';
}

let isoSecond = NaN;
let isoPrefix = '';

/** What `new Date(ms).toISOString()` returns, formatting the date only once a second. */
function isoTime(ms: number): string {
  // Date truncates a fractional time toward zero; the same here, so the milliseconds match Date's.
  const t = Math.trunc(ms);
  const second = Math.floor(t / 1000);
  if (second !== isoSecond) {
    // Throws a RangeError for a time Date cannot hold, as toISOString would; 'NNNZ' is cut off.
    isoPrefix = new Date(second * 1000).toISOString().slice(0, -4);
    isoSecond = second;
  }
  const milli = t - second * 1000;
  return `${isoPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/** `.5`, `.25`, `.734`… for 0–999 thousandths, as a JS number prints them (nothing for 0). */
const FRACTIONS = Array.from({ length: 1000 }, (_, f) => (f === 0 ? '' : `${f / 1000}`.slice(1)));

/**
 * Milliseconds rounded to 3 decimals, written as `${Math.round(ms * 1000) / 1000}` would: from integer
 * microseconds, because turning a double into text is the costliest step of a line, and integers are cheap.
 */
function millis(ms: number): string {
  if (!Number.isFinite(ms)) return 'null';
  const micros = Math.round(ms * 1000);
  if (micros < 0 || micros >= 1e15) return num(micros / 1000);
  const whole = Math.floor(micros / 1000);
  return `${whole}${FRACTIONS[micros - whole * 1000]!}`;
}

/*
 * The line in four runs of fields, each written by one of these, between the
 * values that change on every request. json-bytes.ts keeps each run's bytes
 * while its values repeat; `formatJson` writes the same text from scratch.
 */
export const processFields = (pid: number, thread: number, remoteAddr: string, method: string) =>
  `","pid":${num(pid)},"thread":${num(thread)},"remote_addr":${str(remoteAddr)},"method":${str(method)},"path":`;
export const requestFields = (protocol: string, host: string | null, status: number) =>
  `,"protocol":${str(protocol)},"host":${str(host)},"status":${num(status)},"bytes_sent":`;
export const outcomeFields = (
  route: string | null,
  upstream: string | null,
  backend: string | null,
  upstreamStatus: number | null,
  attempts: number,
  error: string | null,
) =>
  `,"route":${str(route)},"upstream":${str(upstream)},"backend":${str(backend)}` +
  `,"upstream_status":${num(upstreamStatus)},"attempts":${num(attempts)},"error":${str(error)},"request_id":`;
export const clientFields = (userAgent: string | null, referer: string | null) =>
  `,"user_agent":${str(userAgent)},"referer":${str(referer)}}\n`;

/**
 * One JSON object on one line, the keys always in the interface's order: any
 * value, escaped as JSON needs. The writer takes this only for the lines that
 * json-bytes.ts does not write itself; the two give the same bytes.
 */
export function formatJson(r: AccessRecord): string {
  return (
    `{"time":"${isoTime(r.time)}${processFields(r.pid, r.thread, r.remote_addr, r.method)}${str(r.path)}` +
    `${requestFields(r.protocol, r.host, r.status)}${num(r.bytes_sent)},"duration_ms":${millis(r.duration_ms)}` +
    `${outcomeFields(r.route, r.upstream, r.backend, r.upstream_status, r.attempts, r.error)}${str(idText(r.request_id))}` +
    clientFields(r.user_agent, r.referer)
  );
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => (n < 10 ? `0${n}` : `${n}`);

let localSecond = NaN;
let localText = '';

/**
 * nginx's $time_local, `01/Dec/2026:21:05:33 +0000`: the process's local time
 * and its offset from UTC at that moment (so it follows daylight saving time).
 * Offsets change only on whole seconds, so a second's text can be kept.
 */
function timeLocal(ms: number): string {
  const second = Math.floor(Math.trunc(ms) / 1000);
  if (second !== localSecond) {
    const date = new Date(second * 1000);
    // getTimezoneOffset is UTC minus local; nginx prints local minus UTC, in whole minutes.
    const east = -date.getTimezoneOffset();
    const offset = Math.trunc(Math.abs(east));
    localText =
      `${two(date.getDate())}/${MONTHS[date.getMonth()]}/${date.getFullYear()}` +
      `:${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}` +
      ` ${east < 0 ? '-' : '+'}${two(Math.trunc(offset / 60))}${two(offset % 60)}`;
    localSecond = second;
  }
  return localText;
}

/** `\xHH` for each byte, upper-case hex as nginx writes it. */
const HEX_ESCAPES = Array.from({ length: 256 }, (_, byte) => `\\x${byte.toString(16).toUpperCase().padStart(2, '0')}`);
// Everything nginx's escape=default rewrites ('"', '\', bytes below 0x20 and from 0x7f), and every non-latin1 unit.
// eslint-disable-next-line no-control-regex -- finding control characters is this expression's job
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;

/**
 * A variable as nginx logs it with escape=default. The text is taken as the
 * latin1 bytes it came as (Node decodes the head so); a character past latin1
 * as its UTF-8 bytes, as it would have been sent, a lone surrogate as U+FFFD's.
 * null, nginx's "not found", prints `-`; an empty value prints nothing.
 */
function nginxEscape(text: string | null): string {
  if (text == null) return '-';
  if (!NEEDS_ESCAPE.test(text)) return text;
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0x20 && unit < 0x7f && unit !== 0x22 && unit !== 0x5c) continue;
    out += text.slice(from, i);
    if (unit <= 0xff) {
      out += HEX_ESCAPES[unit]!;
    } else {
      const pair = unit >= 0xd800 && unit < 0xdc00 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
      for (const byte of Buffer.from(text.slice(i, pair ? i + 2 : i + 1), 'utf8')) out += HEX_ESCAPES[byte]!;
      if (pair) i++;
    }
    from = i + 1;
  }
  return out + text.slice(from);
}

/**
 * nginx's `combined` format:
 * `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`.
 * There is no remote user (no basic auth here), so it is nginx's `-`.
 */
export function formatCombined(r: AccessRecord): string {
  return (
    `${nginxEscape(r.remote_addr)} - - [${timeLocal(r.time)}] "${nginxEscape(`${r.method} ${r.path} ${r.protocol}`)}"` +
    ` ${r.status} ${r.bytes_sent} "${nginxEscape(r.referer)}" "${nginxEscape(r.user_agent)}"\n`
  );
}
