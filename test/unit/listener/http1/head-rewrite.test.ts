/**
 * The fast path writes heads as bytes (src/listener/http1/rewrite.ts);
 * headers.ts states the same rules on strings for the Node path. Generated
 * heads must come out byte for byte the same both ways.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { STATUS_CODES } from 'node:http';
import { clientResponseRawHeaders, upstreamRequestHeaders } from '../../../../src/listener/headers.ts';
import { parseRequestHead } from '../../../../src/listener/http1/request-head.ts';
import { parseResponseHead } from '../../../../src/listener/http1/response-head.ts';
import { clientResponseHead, forwarding, upstreamRequestHead } from '../../../../src/listener/http1/rewrite.ts';

/** A small deterministic generator (xorshift), so a failure names a seed that repeats it. */
function random(seed: number) {
  let state = seed >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  return {
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
    chance: (p: number) => next() < p,
  };
}

const NAMES = [
  'Host',
  'host',
  'Content-Type',
  'X-Forwarded-For',
  'x-forwarded-for',
  'Via',
  'X-Forwarded-Proto',
  'X-Forwarded-Host',
  'Connection',
  'Accept',
  'Cookie',
  'X-Custom',
  'Keep-Alive',
  'Transfer-Encoding',
  'Trailer',
  'ETag',
  'Server',
];
const VALUES = [
  'a',
  'text/plain',
  '10.0.0.1',
  '1.0 other',
  'close',
  'keep-alive',
  'close, X-Custom',
  'Keep-Alive, ETag',
  ' spaced ',
  'x\ty',
  '',
  '5',
  'chunked',
];
const SEPARATORS = [': ', ':', ':  ', ':\t'];
const TRAILING = ['', '', '', ' ', '\t'];

function headerLines(rng: ReturnType<typeof random>, count: number, skip: (name: string) => boolean): string {
  let text = '';
  for (let i = 0; i < count; i++) {
    const name = rng.pick(NAMES);
    if (skip(name)) continue;
    text += `${name}${rng.pick(SEPARATORS)}${rng.pick(VALUES)}${rng.pick(TRAILING)}\r\n`;
  }
  return text;
}

test('upstream request heads: the byte rewrite equals the string rules of headers.ts', () => {
  let compared = 0;
  for (let seed = 1; seed <= 4000; seed++) {
    const rng = random(seed);
    const lines = headerLines(rng, 1 + (seed % 9), (name) =>
      /^(transfer-encoding|keep-alive|content-length)$/i.test(name),
    );
    const bytes = Buffer.from(
      `GET /p?q=${seed} HTTP/1.1\r\n${rng.chance(0.9) ? 'Host: h\r\n' : ''}${lines}\r\n`,
      'latin1',
    );
    const parsed = parseRequestHead(bytes, 16_384);
    if (parsed.kind !== 'ok') continue;
    const head = parsed.head;
    const forwarded = forwarding('192.0.2.7', 'http');
    let expected = `${head.method} ${head.target} HTTP/1.1\r\n`;
    const flat = upstreamRequestHeaders(head.rawHeaders, forwarded);
    for (let i = 0; i < flat.length; i += 2) expected += `${flat[i]}: ${flat[i + 1]}\r\n`;
    assert.is(
      upstreamRequestHead(head, forwarded).toString('latin1'),
      `${expected}\r\n`,
      `seed ${seed}: ${JSON.stringify(bytes.toString('latin1'))}`,
    );
    compared++;
  }
  assert.ok(compared > 1000, `only ${compared} heads compared`);
});

test('client response heads: the byte rewrite equals the string rules of headers.ts, with the body bytes after the head', () => {
  let compared = 0;
  for (let seed = 1; seed <= 4000; seed++) {
    const rng = random(seed);
    const status = rng.pick([200, 201, 204, 304, 404, 503, 299]);
    const lines = headerLines(rng, seed % 8, (name) => /^(transfer-encoding|content-length)$/i.test(name));
    const body = 'hello';
    const bytes = Buffer.from(
      `HTTP/1.1 ${status} Whatever\r\n${lines}Content-Length: ${body.length}\r\n\r\n${body}`,
      'latin1',
    );
    const parsed = parseResponseHead(bytes, 65_536, 'GET');
    if (parsed.kind !== 'ok') continue;
    const head = parsed.head;
    const closeAfter = rng.chance(0.3);
    let expected = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    const flat = clientResponseRawHeaders(head.rawHeaders);
    for (let i = 0; i < flat.length; i += 2) expected += `${flat[i]}: ${flat[i + 1]}\r\n`;
    expected += `Connection: ${closeAfter ? 'close' : 'keep-alive'}\r\n\r\n${body}`;
    const actual = clientResponseHead(head, closeAfter, bytes, head.headLength, bytes.length).toString('latin1');
    assert.is(actual, expected, `seed ${seed}: ${JSON.stringify(bytes.toString('latin1'))}`);
    compared++;
  }
  assert.ok(compared > 1000, `only ${compared} heads compared`);
});

test('near the 16 KiB limit: long Host, X-Forwarded-For and Via values and many short lines come out whole', () => {
  // 96 lines that each grow by a byte (`X1:v` -> `X1: v`): the fast path takes 100 headers at most.
  const short = Array.from({ length: 96 }, (_, i) => `X${i}:v\r\n`).join('');
  const bytes = Buffer.from(
    `GET /big HTTP/1.1\r\nHost: ${'h'.repeat(5000)}\r\nX-Forwarded-For: ${'1'.repeat(5000)}\r\nVia: ${'v'.repeat(5000)}\r\n${short}\r\n`,
    'latin1',
  );
  assert.ok(bytes.length > 15_000 && bytes.length <= 16_384, `${bytes.length} bytes`);
  const parsed = parseRequestHead(bytes, 16_384);
  assert.is(parsed.kind, 'ok');
  if (parsed.kind !== 'ok') return;
  const forwarded = forwarding('2001:db8::1', 'http');
  let expected = 'GET /big HTTP/1.1\r\n';
  const flat = upstreamRequestHeaders(parsed.head.rawHeaders, forwarded);
  for (let i = 0; i < flat.length; i += 2) expected += `${flat[i]}: ${flat[i + 1]}\r\n`;
  assert.is(upstreamRequestHead(parsed.head, forwarded).toString('latin1'), `${expected}\r\n`);
});

test('a chunked response keeps its Transfer-Encoding, written once after the other headers', () => {
  const bytes = Buffer.from(
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    'latin1',
  );
  const parsed = parseResponseHead(bytes, 65_536, 'GET');
  assert.is(parsed.kind, 'ok');
  if (parsed.kind !== 'ok') return;
  assert.is(
    clientResponseHead(parsed.head, false, bytes, 0, 0).toString('latin1'),
    'HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: gzip, chunked\r\nConnection: keep-alive\r\n\r\n',
  );
});

test.run();
