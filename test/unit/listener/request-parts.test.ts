/** The listener's pure parts: header rewriting, endpoint answers, failures and retries, request ids. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clientResponseHeaders, isLoop, upstreamRequestHeaders } from '../../../src/listener/headers.ts';
import { answerEndpoint } from '../../../src/listener/endpoints.ts';
import { isStaleConnection, requestFailure } from '../../../src/listener/failures.ts';
import { afterFailure, type FailedAttempt } from '../../../src/listener/retry-policy.ts';
import { RequestId } from '../../../src/listener/request-id.ts';

test('request headers: hop-by-hop and Connection-named headers dropped, order and case kept, forwarding headers added', () => {
  const out = upstreamRequestHeaders(
    [
      'Host',
      'example.test',
      'Connection',
      'keep-alive, X-Private',
      'X-Private',
      'secret',
      'Keep-Alive',
      'timeout=5',
      'TE',
      'trailers',
      'Accept',
      '*/*',
      'X-Forwarded-For',
      '10.1.1.1',
      'Expect',
      '100-continue',
    ],
    { clientIp: '127.0.0.1', proto: 'http' },
  );
  assert.equal(out, [
    'Host',
    'example.test',
    'Accept',
    '*/*',
    'x-forwarded-for',
    '10.1.1.1, 127.0.0.1',
    'x-forwarded-proto',
    'http',
    'x-forwarded-host',
    'example.test',
    'via',
    '1.1 sluice',
  ]);
});

test('request headers: an existing Via is extended; our own Via is a loop', () => {
  const out = upstreamRequestHeaders(['Via', '1.0 fred'], { clientIp: '::1', proto: 'http' });
  assert.equal(out.slice(-2), ['via', '1.0 fred, 1.1 sluice']);
  assert.ok(isLoop(['via', '1.0 fred, 1.1 sluice']));
  assert.not.ok(isLoop(['via', '1.1 sluice-other']));
});

test('response headers: framing and hop-by-hop headers are left to the proxy', () => {
  assert.equal(
    clientResponseHeaders({
      'content-type': 'text/plain',
      'transfer-encoding': 'chunked',
      connection: 'x-hop',
      'x-hop': '1',
      'set-cookie': ['a=1', 'b=2'],
    }),
    { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] },
  );
});

test('endpoints: /ready holds only when healthy with backends and a live pool', () => {
  const healthy = { state: 'healthy' as const, poolHealthy: true };
  const inputs = (
    status: typeof healthy | { state: 'starting' | 'draining'; poolHealthy: boolean },
    available: number,
  ) => ({ status, backendsAvailable: available > 0 });
  assert.is(answerEndpoint('ready', inputs(healthy, 1)).status, 200);
  assert.is(answerEndpoint('ready', inputs(healthy, 0)).status, 503);
  assert.is(answerEndpoint('ready', inputs({ ...healthy, poolHealthy: false }, 1)).status, 503);
  assert.is(answerEndpoint('ready', inputs({ ...healthy, state: 'draining' }, 1)).status, 503);
  assert.equal(answerEndpoint('health', inputs({ ...healthy, state: 'starting' }, 1)), {
    status: 503,
    body: { status: 'unhealthy', state: 'starting' },
  });
  assert.is(answerEndpoint('live', inputs({ ...healthy, state: 'draining' }, 0)).status, 200);
});

test('request failures: one table says what is retried, for both engines', () => {
  assert.equal(requestFailure('ECONNREFUSED'), {
    code: 'ECONNREFUSED',
    source: 'upstream',
    retryable: true,
    passive: true,
  });
  assert.is(requestFailure('UPSTREAM_TIMEOUT').retryable, false, 'a silent backend may have processed the request');
  assert.is(requestFailure('UPSTREAM_TIMEOUT').passive, true);
  assert.is(requestFailure('INVALID_RESPONSE').retryable, false);
  assert.is(requestFailure('CLIENT_ABORTED').source, 'downstream');
  assert.equal(requestFailure('EWHATEVER'), {
    code: 'EWHATEVER',
    source: 'upstream',
    retryable: false,
    passive: false,
  });
  assert.ok(isStaleConnection('UPSTREAM_CLOSED') && !isStaleConnection('ECONNREFUSED'));
});

test('retry policy: one rule for every engine, case by case', () => {
  const fresh: FailedAttempt = {
    code: 'ECONNREFUSED',
    retries: 0,
    hasBody: false,
    bodyHeld: false,
    answered: false,
    reused: false,
    staleRetried: false,
  };
  const cases: [string, Partial<FailedAttempt>, string, number, boolean][] = [
    ['a refused connect goes to the next backend', {}, 'next-backend', 502, true],
    ['after two retries, the proxy answers', { retries: 2 }, 'answer', 502, true],
    ['a body already streamed cannot be sent again', { hasBody: true }, 'answer', 502, true],
    ['a body still held can', { hasBody: true, bodyHeld: true }, 'next-backend', 502, true],
    [
      'a reset after part of the response cannot be retried',
      { code: 'ECONNRESET', answered: true },
      'answer',
      502,
      true,
    ],
    [
      'the keep-alive race: once more, same backend, not held against it',
      { code: 'ECONNRESET', reused: true },
      'same-backend',
      502,
      false,
    ],
    ['the race only once', { code: 'UPSTREAM_CLOSED', reused: true, staleRetried: true }, 'next-backend', 502, true],
    ['a fresh connection reset is the backend failing', { code: 'ECONNRESET' }, 'next-backend', 502, true],
    [
      'a race with a body is not replayed on the same backend',
      { code: 'EPIPE', reused: true, hasBody: true },
      'answer',
      502,
      true,
    ],
    ['a silent backend may have acted: 504, no retry', { code: 'UPSTREAM_TIMEOUT' }, 'answer', 504, true],
    ['an invalid response is not retried nor counted', { code: 'INVALID_RESPONSE' }, 'answer', 502, false],
    ['a connect timeout is retried', { code: 'CONNECT_TIMEOUT' }, 'next-backend', 502, true],
  ];
  for (const [what, change, next, status, passive] of cases) {
    assert.equal(afterFailure({ ...fresh, ...change }), { next, status, passive }, what);
  }
});

test('request ids: a new one is 32 hex digits, unique, and its line is written as its value reads', () => {
  const target = Buffer.alloc(128);
  const seen = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const id = RequestId.from('x-request-id', undefined);
    const end = id.writeLine(target, 0);
    assert.is(end, id.lineLength);
    assert.is(target.toString('latin1', 0, end), `x-request-id: ${id.value}\r\n`);
    assert.match(id.value, /^[0-9a-f]{32}$/);
    seen.add(id.value);
  }
  assert.is(seen.size, 300);
  const sent = RequestId.from('x-trace', 'client-7');
  assert.is(sent.generated, false);
  assert.is(target.toString('latin1', 0, sent.writeLine(target, 0)), 'x-trace: client-7\r\n');
  assert.is(RequestId.from('x-trace', '').generated, true, 'an empty id is replaced');
});

test.run();
