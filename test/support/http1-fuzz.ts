/**
 * The differential fuzz behind test/unit/listener/http1/http1-differential.test.ts, run in a
 * child process with --expose-internals (for the llhttp oracle). Generates
 * requests and responses from a seeded random walk over valid and invalid
 * pieces, feeds each to sluice's fast-path parser and to llhttp, and prints
 * one JSON line: counts and the first mismatches.
 *
 * Requests: whatever the fast path accepts, llhttp must accept and frame the
 * same (method, target, headers, body length, keep-alive); what it does not
 * accept is handed to llhttp itself, so sluice as a whole accepts exactly
 * what llhttp accepts. Responses have no hand-off: the verdicts must agree.
 */
import { parseRequestHead } from '../../src/listener/http1/request-head.ts';
import { parseResponseHead } from '../../src/listener/http1/response-head.ts';
import { ChunkedScanner } from '../../src/listener/http1/chunked.ts';
import { llhttp } from './llhttp-oracle.ts';

const seed = Number(process.argv[2] ?? 1);
const cases = Number(process.argv[3] ?? 5000);

function mulberry32(a: number) {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = mulberry32(seed);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const chance = (p: number) => random() < p;

const methods = [
  'GET',
  'GET',
  'GET',
  'HEAD',
  'POST',
  'POST',
  'PUT',
  'DELETE',
  'OPTIONS',
  'PATCH',
  'CONNECT',
  'TRACE',
  'get',
  'PROPFIND',
  'G\x00T',
];
const targets = [
  '/',
  '/',
  '/a/b?c=d&e',
  '/a%20b',
  '/%zz',
  "/!$&'()*+,;=:@",
  '/a#frag',
  '*',
  'http://h/p',
  '/a b',
  '/\x7f',
  '/\xe9',
  '/a|b',
  '/{x}',
  '/"q"',
  '',
  '//x',
];
const versions = [
  'HTTP/1.1',
  'HTTP/1.1',
  'HTTP/1.1',
  'HTTP/1.0',
  'HTTP/2.0',
  'HTTP/1.2',
  'http/1.1',
  'HTTP/1.1 ',
  'HTTP/1.',
  'HTTP/0.9',
];
const requestHeaders = [
  'Host: example.com',
  'Host:example.com',
  'Host:   spaced   ',
  'Host: a',
  'host: b',
  'Accept: */*',
  'User-Agent: fuzz/1.0',
  'X-Empty:',
  'X-Empty: ',
  'X-Tab:\tv\t',
  'X-Inner: a  b',
  'X : space-before-colon',
  ' X-Lead: folded',
  '\tX-Lead: tab',
  'X-Ctl: a\x01b',
  'X-Del: a\x7fb',
  'X-Obs: caf\xe9',
  'X-Nul: a\x00b',
  'X-Bad\x00Name: v',
  'X/Slash: v',
  'X-"Quote": v',
  ': no-name',
  'NoColon',
  'Content-Length: 3',
  'Content-Length: 0',
  'Content-Length: 003',
  'Content-Length:  3 ',
  'Content-Length: 3, 3',
  'Content-Length: -1',
  'Content-Length: 1 2',
  'Content-Length: x',
  'Content-Length: 99999999999999999999',
  'Transfer-Encoding: chunked',
  'Transfer-Encoding: gzip',
  'Connection: close',
  'Connection: keep-alive',
  'Connection: Keep-Alive, close',
  'Connection: upgrade',
  'Connection: x-custom',
  'Upgrade: websocket',
  'Expect: 100-continue',
  'TE: trailers',
  'Keep-Alive: timeout=5',
  'Via: 1.0 other',
  'X-Forwarded-For: 10.0.0.1',
  'Cookie: a=b; c=d',
];
const endings = ['\r\n', '\r\n', '\r\n', '\r\n', '\r\n', '\r\n', '\n', '\r'];

function generateRequest(): Buffer {
  const eol = () => (chance(0.99) ? '\r\n' : pick(endings));
  const method = chance(0.7) ? pick(methods.slice(0, 10)) : pick(methods);
  let line = `${method} ${chance(0.6) ? pick(targets.slice(0, 6)) : pick(targets)} ${chance(0.8) ? 'HTTP/1.1' : pick(versions)}`;
  if (chance(0.03)) line = line.replace(' ', '  ');
  const headers: string[] = [];
  if (chance(0.9)) headers.push(chance(0.8) ? 'Host: example.com' : pick(requestHeaders.slice(0, 5)));
  const count = Math.floor(random() * 4);
  for (let i = 0; i < count; i++) headers.push(chance(0.5) ? pick(requestHeaders.slice(5, 11)) : pick(requestHeaders));
  if (chance(0.05)) headers.push('Host: second.example');
  if (chance(0.15))
    headers.push(
      pick([
        'Transfer-Encoding: chunked',
        'Transfer-Encoding: Chunked',
        'transfer-encoding:  chunked ',
        'Transfer-Encoding: gzip, chunked',
      ]),
    );
  let head = `${line}${eol()}`;
  for (const header of headers) head += `${header}${eol()}`;
  head += eol();
  const lengthHeader = headers.find((h) => /^content-length:/i.test(h));
  const declared = lengthHeader ? Number(lengthHeader.split(':')[1]!.trim()) : 0;
  let body = Number.isFinite(declared) && declared > 0 && declared < 100 ? 'x'.repeat(declared) : '';
  if (headers.some((h) => /^transfer-encoding:/i.test(h)) && chance(0.9)) body = chunkedBody(eol);
  return Buffer.from(head + body, 'latin1');
}

/** A chunked body, mostly valid: sizes, extensions, data, CRLFs and trailers from good and bad pieces. */
function chunkedBody(eol: () => string): string {
  let body = '';
  const pieces = Math.floor(random() * 3);
  for (let i = 0; i < pieces; i++)
    body += `${chance(0.85) ? '3' : pick(chunkSizes)}${eol()}abc${chance(0.95) ? '\r\n' : pick(['\n', '', 'x\r\n'])}`;
  body += `0${eol()}`;
  if (chance(0.2)) body += `${pick(trailerLines)}${eol()}`;
  return body + (chance(0.95) ? '\r\n' : pick(['', '\n']));
}

const statusLines = [
  'HTTP/1.1 200 OK',
  'HTTP/1.1 200 OK',
  'HTTP/1.1 200 OK',
  'HTTP/1.1 404 Not Found',
  'HTTP/1.0 200 OK',
  'HTTP/1.1 204 No Content',
  'HTTP/1.1 304 Not Modified',
  'HTTP/1.1 200',
  'HTTP/1.1 200 ',
  'HTTP/1.1 200 Ok\xe9',
  'HTTP/1.1 200 O\x01K',
  'HTTP/1.1 099 Low',
  'HTTP/1.1 20 Short',
  'HTTP/1.1 2000 Long',
  'HTTP/1.1  200 OK',
  'HTTP/2.0 200 OK',
  'HTTP/1.2 200 OK',
  'http/1.1 200 OK',
  'HTTP/1.1 103 Early Hints',
  'HTTP/1.1 101 Switching Protocols',
  'HTTP/1.1 500 Oops',
];
const responseHeaders = [
  'Content-Type: text/plain',
  'Date: Wed, 25 Nov 2026 10:00:00 GMT',
  'X-Empty:',
  'X-Obs: caf\xe9',
  'X-Tab:\tv',
  'X : y',
  ' X-Fold: y',
  'X-Ctl: a\x01b',
  'X-Nul: a\x00b',
  'Connection: close',
  'Connection: keep-alive',
  'Keep-Alive: timeout=5',
  'Set-Cookie: a=b',
  'Set-Cookie: c=d',
  'Trailer: X-Sum',
  'NoColon',
  'X-Del: a\x7fb',
  'X-Tail: v \t',
  'X/Slash: v',
  ': v',
  'X-Inner: a  b',
];
const framings = [
  'length',
  'length',
  'length',
  'chunked',
  'chunked',
  'chunked',
  'close',
  'both',
  'dup-length',
  'bad-length',
  'te-gzip',
  'te-gzip-chunked',
  'te-chunked-gzip',
];
const chunkSizes = [
  '3',
  '03',
  '3;ext=1',
  '3;a="b c"',
  '3;a="q\\"x"',
  '3;a=b;c',
  '3;a=',
  '3;a= b',
  '3;"x"',
  '3 ',
  ' 3',
  'g',
  '',
  '3;',
  '0000003',
  '3;ext=\x01',
  'A',
  'a',
];
const trailerLines = ['X-Sum: 1', 'X-Sum:1', 'X Sum: 1', ' X-Sum: 1', 'X-Sum: a\x01', 'Bad'];

function generateResponse(): { bytes: Buffer; method: string } {
  const eol = () => (chance(0.98) ? '\r\n' : pick(endings));
  const method = chance(0.85) ? 'GET' : 'HEAD';
  const headers: string[] = [];
  const count = Math.floor(random() * 4);
  for (let i = 0; i < count; i++) headers.push(pick(responseHeaders));
  const framing = pick(framings);
  let body: string;
  switch (framing) {
    case 'length':
      headers.push(pick(['Content-Length: 5', 'Content-Length: 05', 'Content-Length:  5 ', 'Content-Length: 0']));
      body = headers.at(-1)!.endsWith(' 0') ? '' : 'hello';
      break;
    case 'dup-length':
      headers.push('Content-Length: 5', 'Content-Length: 5');
      body = 'hello';
      break;
    case 'bad-length':
      headers.push(pick(['Content-Length: -5', 'Content-Length: 5x', 'Content-Length: 5, 5', 'Content-Length: 2 3']));
      body = 'hello';
      break;
    case 'both':
      headers.push('Content-Length: 5', 'Transfer-Encoding: chunked');
      body = '0\r\n\r\n';
      break;
    case 'te-gzip':
      headers.push('Transfer-Encoding: gzip');
      body = 'raw-until-close';
      break;
    case 'close':
      body = 'until-close';
      break;
    default: {
      headers.push(
        framing === 'chunked'
          ? pick(['Transfer-Encoding: chunked', 'Transfer-Encoding: Chunked', 'transfer-encoding:  chunked '])
          : framing === 'te-gzip-chunked'
            ? 'Transfer-Encoding: gzip, chunked'
            : 'Transfer-Encoding: chunked, gzip',
      );
      body = chunkedBody(eol);
      if (chance(0.03)) body += 'x';
    }
  }
  let head = `${pick(statusLines)}${eol()}`;
  for (const header of headers) head += `${header}${eol()}`;
  head += eol();
  return { bytes: Buffer.from(head + body, 'latin1'), method };
}

/** sluice's verdict on a whole response, as the fast path would read it to the end. */
function sluiceResponse(bytes: Buffer, method: string) {
  const parsed = parseResponseHead(bytes, 16_384, method);
  if (parsed.kind !== 'ok')
    return { ok: false as const, reason: parsed.kind === 'invalid' ? parsed.reason : 'incomplete' };
  const head = parsed.head;
  if (head.status === 101) return { ok: false as const, reason: '101 without an upgrade' };
  const rest = bytes.subarray(head.headLength);
  switch (head.framing.type) {
    case 'none':
      return rest.length === 0
        ? { ok: true as const, head, bodyLength: 0 }
        : { ok: false as const, reason: 'bytes after a bodiless response' };
    case 'length':
      return rest.length === head.framing.length
        ? { ok: true as const, head, bodyLength: rest.length }
        : { ok: false as const, reason: 'length mismatch' };
    case 'close':
      return { ok: true as const, head, bodyLength: rest.length };
    case 'chunked': {
      const scanner = new ChunkedScanner();
      const end = scanner.scan(rest);
      if (end === -2) return { ok: false as const, reason: scanner.error! };
      if (end !== rest.length)
        return { ok: false as const, reason: end === -1 ? 'chunked body incomplete' : 'bytes after the chunked body' };
      return { ok: true as const, head, bodyLength: -1 };
    }
  }
}

const show = (bytes: Buffer) => JSON.stringify(bytes.toString('latin1'));
const requestReport = {
  cases: 0,
  accepted: 0,
  handedOff: 0,
  llhttpRejected: 0,
  chunkedComplete: 0,
  chunkedInvalid: 0,
  mismatches: [] as string[],
};
for (let i = 0; i < cases; i++) {
  const bytes = generateRequest();
  requestReport.cases++;
  const oracle = llhttp('request', bytes);
  if (!oracle.ok || oracle.messages.length !== 1) requestReport.llhttpRejected++;
  const fast = parseRequestHead(bytes, 16_384);
  if (fast.kind !== 'ok') {
    requestReport.handedOff++;
    continue;
  }
  requestReport.accepted++;
  const head = fast.head;
  const rest = bytes.subarray(head.headLength);
  let fastVerdict: 'complete' | 'incomplete' | 'invalid';
  if (head.chunked) {
    const scanner = new ChunkedScanner();
    const at = scanner.scan(rest);
    fastVerdict = at === -2 ? 'invalid' : at === rest.length ? 'complete' : 'incomplete';
    if (fastVerdict === 'complete') requestReport.chunkedComplete++;
    if (fastVerdict === 'invalid') requestReport.chunkedInvalid++;
  } else {
    fastVerdict = rest.length === head.contentLength ? 'complete' : 'incomplete';
  }
  const oracleVerdict = !oracle.ok
    ? oracle.atEof
      ? 'incomplete'
      : 'invalid'
    : oracle.messages.length === 1 && oracle.consumed === bytes.length
      ? 'complete'
      : oracle.messages.length === 0
        ? 'incomplete'
        : 'other';
  const message = oracle.ok ? oracle.messages[0] : undefined;
  const problem =
    fastVerdict !== oracleVerdict
      ? `fast path ${fastVerdict}, llhttp ${oracleVerdict}${oracle.ok ? '' : ` (${oracle.error})`}`
      : !message
        ? undefined
        : message.method !== head.method
          ? 'method'
          : message.url !== head.target
            ? 'target'
            : JSON.stringify(message.rawHeaders) !== JSON.stringify(head.rawHeaders)
              ? `headers ${JSON.stringify(message.rawHeaders)} vs ${JSON.stringify(head.rawHeaders)}`
              : !head.chunked && message.body.length !== head.contentLength
                ? 'body length'
                : message.keepAlive === head.close
                  ? 'keep-alive'
                  : undefined;
  if (problem && requestReport.mismatches.length < 10) requestReport.mismatches.push(`${problem}: ${show(bytes)}`);
}

const responseReport = { cases: 0, accepted: 0, rejected: 0, mismatches: [] as string[] };
for (let i = 0; i < cases; i++) {
  const { bytes, method } = generateResponse();
  responseReport.cases++;
  const raw = llhttp('response', bytes, { skipBody: method === 'HEAD' });
  // undici refuses a 101 it did not ask for, and (like the fast path) skips 1xx heads.
  const oracle =
    raw.ok && raw.messages.some((m) => m.upgrade || m.status === 101)
      ? { ok: false as const, error: 'unexpected upgrade' }
      : raw;
  const mine = sluiceResponse(bytes, method);
  if (mine.ok) responseReport.accepted++;
  else responseReport.rejected++;
  let problem: string | undefined;
  if (mine.ok !== oracle.ok)
    problem = mine.ok
      ? `llhttp rejects (${(oracle as { error: string }).error})`
      : `sluice rejects (${(mine as { reason: string }).reason})`;
  else if (mine.ok && oracle.ok) {
    const message = oracle.messages[0];
    if (oracle.messages.length !== 1 || !message) problem = `llhttp sees ${oracle.messages.length} messages`;
    else if (message.status !== mine.head.status) problem = 'status';
    else if ((message.reason ?? '') !== mine.head.reason)
      problem = `reason ${JSON.stringify(message.reason)} vs ${JSON.stringify(mine.head.reason)}`;
    else if (JSON.stringify(message.rawHeaders) !== JSON.stringify(mine.head.rawHeaders)) problem = 'headers';
    else if (oracle.consumed !== bytes.length) problem = 'message end';
    else if (mine.bodyLength >= 0 && message.body.length !== mine.bodyLength) problem = 'body length';
    else if (message.keepAlive !== mine.head.reusable && mine.head.framing.type !== 'close')
      problem = `keep-alive ${message.keepAlive} vs ${mine.head.reusable}`;
  }
  if (problem && responseReport.mismatches.length < 10)
    responseReport.mismatches.push(`${problem}: ${show(bytes)} (${method})`);
}

process.stdout.write(`${JSON.stringify({ seed, requests: requestReport, responses: responseReport })}\n`);
