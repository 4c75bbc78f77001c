/**
 * The proxy's own answers, as data, once: what a route's `respond`, a
 * request no route takes, and an upstream without backends get. Both
 * engines write them from here: the fast path as bytes on the raw socket,
 * the Node path through ServerResponse.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';

export interface OwnAnswer {
  status: number;
  /** Why the proxy answered (docs/errors.md), for the access log; null for a `respond` route. */
  code: string | null;
  /** Lowercase names. */
  headers: readonly (readonly [string, string])[];
  body: string;
}

const TEXT = ['content-type', 'text/plain; charset=utf-8'] as const;

export const NO_ROUTE: OwnAnswer = {
  status: 404,
  code: 'NO_ROUTE',
  headers: [['content-type', 'application/json']],
  body: '{"error":"no_route"}',
};

/** An upstream with no backend at all: nothing to wait for on this proxy, so clients are told to come back. */
export const NO_BACKENDS: OwnAnswer = {
  status: 503,
  code: 'NO_BACKENDS',
  headers: [TEXT, ['retry-after', '1']],
  body: 'Service Unavailable: no backend configured\n',
};

export function plainAnswer(status: number, text: string, code: string | null): OwnAnswer {
  return { status, code, headers: [TEXT], body: `${text}\n` };
}

export function routeAnswer(respond: {
  status: number;
  body: string;
  headers: Readonly<Record<string, string>>;
}): OwnAnswer {
  const headers = Object.entries(respond.headers).map(([name, value]) => [name.toLowerCase(), value] as const);
  if (!headers.some(([name]) => name === 'content-type')) headers.unshift(TEXT);
  return { status: respond.status, code: null, headers, body: respond.body };
}

let dateSecond = -1;
let dateValue = '';
/** The Date header (RFC 9110 §6.6.1: an origin with a clock sends it), made once a second. */
export function httpDate(now = Date.now()): string {
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(second * 1000).toUTCString();
  }
  return dateValue;
}

/** The answer as one buffer for a raw socket; `headOnly` for HEAD requests (Content-Length stays the body's). */
export function ownAnswerBytes(answer: OwnAnswer, close: boolean, headOnly: boolean, extra = ''): Buffer {
  const body = Buffer.from(answer.body, 'utf8');
  let head = `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Unknown'}\r\ndate: ${httpDate()}\r\n`;
  for (const [name, value] of answer.headers) head += `${name}: ${value}\r\n`;
  // 204 and 304 carry no body and (204) no Content-Length (RFC 9110 §8.6).
  const bodiless = answer.status === 204 || answer.status === 304;
  head += `${bodiless ? '' : `content-length: ${body.length}\r\n`}${extra}connection: ${close ? 'close' : 'keep-alive'}\r\n\r\n`;
  const bytes = Buffer.from(head, 'latin1');
  return headOnly || bodiless ? bytes : Buffer.concat([bytes, body]);
}

/** The answer through Node's ServerResponse (the Node path). */
export function sendOwnAnswer(
  res: ServerResponse,
  answer: OwnAnswer,
  close: boolean,
  extra: Record<string, string> = {},
): void {
  if (res.headersSent) return void res.destroy();
  const body = Buffer.from(answer.body, 'utf8');
  res.writeHead(answer.status, {
    ...Object.fromEntries(answer.headers),
    'content-length': body.length,
    ...extra,
    ...(close && { connection: 'close' }),
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** A plain-text answer of the proxy's own through Node's ServerResponse. */
export function sendPlain(
  res: ServerResponse,
  status: number,
  text: string,
  extra: Record<string, string> = {},
  close = false,
): void {
  sendOwnAnswer(res, plainAnswer(status, text, null), close, extra);
}
