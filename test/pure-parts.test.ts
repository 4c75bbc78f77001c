/** The pure building blocks: balancing, health hysteresis, header rewriting, endpoint answers. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SmoothWeightedRoundRobin } from '../src/pool/balancers/smooth-wrr.ts';
import { initialTally, observeHealth, type HealthTally } from '../src/health/hysteresis.ts';
import { clientResponseHeaders, isLoop, upstreamRequestHeaders } from '../src/listener/headers.ts';
import { answerEndpoint } from '../src/listener/endpoints.ts';
import { isStaleConnection, requestFailure } from '../src/listener/failures.ts';
import { afterFailure, type FailedAttempt } from '../src/listener/retry-policy.ts';
import { RequestId } from '../src/listener/request-id.ts';
import { BackendPool, selectableCount } from '../src/pool/backend-pool.ts';

interface TestCandidate {
  id: string;
  weight: number;
  selectable: boolean;
  slot: number;
}
const candidates = (weights: Record<string, number>): TestCandidate[] =>
  Object.entries(weights).map(([id, weight], slot) => ({ id, weight, selectable: true, slot }));
const picks = (rr: SmoothWeightedRoundRobin<TestCandidate>, n: number) =>
  Array.from({ length: n }, () => rr.pick()?.id).join(' ');

test('smooth WRR: weights 5:1:1 give a a b a c a a, as nginx does', () => {
  const rr = new SmoothWeightedRoundRobin(candidates({ a: 5, b: 1, c: 1 }));
  assert.is(picks(rr, 7), 'a a b a c a a');
  assert.is(picks(rr, 7), 'a a b a c a a');
});

test('smooth WRR: 3:1, exclusions, and an empty set', () => {
  const rr = new SmoothWeightedRoundRobin(candidates({ a: 3, b: 1 }));
  assert.is(picks(rr, 8), 'a a b a a a b a');
  assert.is(rr.pick(undefined, new Set(['a']))?.id, 'b');
  assert.is(rr.pick(undefined, new Set(['a', 'b'])), undefined);
  assert.is(new SmoothWeightedRoundRobin<TestCandidate>([]).pick(), undefined);
  // Unselectable (unhealthy, disabled, ejected) candidates are never chosen.
  const some = new SmoothWeightedRoundRobin([
    ...candidates({ a: 3 }),
    { id: 'b', weight: 1, selectable: false, slot: 1 },
  ]);
  assert.is(picks(some, 4), 'a a a a');
});

test('hysteresis: flips only after the thresholds; agreeing observations reset the streak', () => {
  const thresholds = { healthyThreshold: 2, unhealthyThreshold: 3 };
  const table: [boolean, boolean, boolean][] = [
    // passed, healthy after, flipped
    [true, false, false],
    [false, false, false], // agrees with unhealthy: streak reset
    [true, false, false],
    [true, true, true],
    [false, true, false],
    [false, true, false],
    [true, true, false], // agrees with healthy: streak reset
    [false, true, false],
    [false, true, false],
    [false, false, true],
  ];
  let tally: HealthTally = initialTally;
  table.forEach(([passed, healthy, flipped], i) => {
    const result = observeHealth(tally, passed, thresholds);
    assert.is(result.tally.healthy, healthy, `step ${i}`);
    assert.is(result.flipped, flipped, `step ${i}`);
    tally = result.tally;
  });
});

test('hysteresis: with threshold 1 the first pass flips a new backend to healthy', () => {
  const result = observeHealth(initialTally, true, { healthyThreshold: 1, unhealthyThreshold: 1 });
  assert.equal(result, { tally: { healthy: true, streak: 0 }, flipped: true });
});

test('pool: backends start unhealthy; only real changes bump the version', () => {
  const pool = new BackendPool([
    { address: '10.0.0.1', port: 80, weight: 2, enabled: true },
    { address: '::1', port: 81, weight: 1, enabled: true },
  ]);
  assert.is(selectableCount(pool.snapshot(0)), 0);
  assert.equal(
    pool.snapshot(0).backends.map((b) => [b.id, b.slot]),
    [
      ['10.0.0.1:80', 0],
      ['[::1]:81', 1],
    ],
  );
  assert.ok(pool.applyHealth({ backend: '10.0.0.1:80', healthy: true, reason: 'status 200' }));
  assert.not.ok(pool.applyHealth({ backend: '10.0.0.1:80', healthy: true, reason: 'status 200' }));
  assert.not.ok(pool.applyHealth({ backend: 'unknown:1', healthy: true, reason: 'status 200' }));
  assert.is(pool.snapshot(0).version, 1);
  assert.is(selectableCount(pool.snapshot(0)), 1);
});

test('pool: a disabled backend is kept and tracked but never selectable', () => {
  const pool = new BackendPool([{ address: 'a', port: 1, weight: 1, enabled: false }]);
  pool.applyHealth({ backend: 'a:1', healthy: true, reason: 'status 200' });
  const [backend] = pool.snapshot(0).backends;
  assert.equal([backend!.healthy, backend!.enabled, backend!.selectable], [true, false, false]);
});

test('pool: passive ejection after N consecutive failures, a success resets the count, the active check decides after', () => {
  const pool = new BackendPool([{ address: 'a', port: 1, weight: 1, enabled: true }], {
    failures: 3,
    ejectionMs: 10_000,
  });
  pool.applyHealth({ backend: 'a:1', healthy: true, reason: 'status 200' });
  const fail = (now: number) => pool.reportPassive({ type: 'failure', backend: 'a:1', code: 'ECONNREFUSED' }, now);
  assert.is(fail(0), undefined);
  assert.is(fail(0), undefined);
  pool.reportPassive({ type: 'recovered', backend: 'a:1' }, 0);
  assert.is(fail(1), undefined);
  assert.is(fail(1), undefined);
  const ejection = fail(1);
  assert.equal(ejection, { backend: 'a:1', until: 10_001, failures: 3, lastCode: 'ECONNREFUSED' });
  assert.equal(pool.snapshot(5_000).backends[0]!.ejected, true);
  assert.is(selectableCount(pool.snapshot(5_000)), 0);
  assert.is(pool.nextEjectionEnd(), 10_001);
  // The active check passes during the ejection: still not selectable until it ends.
  pool.applyHealth({ backend: 'a:1', healthy: true, reason: 'status 200' });
  assert.is(selectableCount(pool.snapshot(10_000)), 0);
  assert.not.ok(pool.expireEjections(10_000));
  assert.ok(pool.expireEjections(10_001));
  assert.is(selectableCount(pool.snapshot(10_001)), 1);
});

test('pool: a reload replacing the whole set keeps the old backend as a fallback until a new one is healthy', () => {
  const spec = (address: string) => ({ address, port: 1, weight: 1, enabled: true });
  const selectable = (pool: BackendPool) =>
    pool
      .snapshot(0)
      .backends.filter((b) => b.selectable)
      .map((b) => b.id);
  const pool = new BackendPool([spec('a'), spec('dead')]);
  pool.applyHealth({ backend: 'a:1', healthy: true, reason: 'status 200' }, 0);
  assert.ok(pool.reconcile([spec('b')], null, 0));
  assert.equal(selectable(pool), ['a:1'], 'a serves on while b is unproven; the unhealthy one is gone at once');
  assert.equal(
    pool.snapshot(0).backends.map((b) => [b.id, b.retiring ?? false]),
    [
      ['a:1', true],
      ['b:1', false],
    ],
  );
  pool.applyHealth({ backend: 'b:1', healthy: true, reason: 'status 200' }, 0);
  assert.equal(
    pool.snapshot(0).backends.map((b) => b.id),
    ['b:1'],
    'dropped once b is healthy',
  );

  // A backend that comes back in a later reload stops retiring.
  const again = new BackendPool([spec('a')]);
  again.applyHealth({ backend: 'a:1', healthy: true, reason: 'status 200' }, 0);
  again.reconcile([spec('b')], null, 0);
  again.reconcile([spec('a'), spec('b')], null, 0);
  assert.equal(
    again.snapshot(0).backends.map((b) => [b.id, b.retiring ?? false, b.selectable]),
    [
      ['a:1', false, true],
      ['b:1', false, false],
    ],
  );
  // And the fallback has an end even if no new backend ever passes.
  again.reconcile([spec('c')], null, 0);
  assert.ok(again.hasRetiring);
  assert.ok(again.dropRetiring());
  assert.equal(selectable(again), []);

  // A reload to an empty set empties it at once: there is no new backend to wait for.
  const emptied = new BackendPool([spec('a')]);
  emptied.applyHealth({ backend: 'a:1', healthy: true, reason: 'status 200' }, 0);
  emptied.reconcile([], null, 0);
  assert.equal(emptied.snapshot(0).backends, []);
});

test('pool: without a passive policy, reports change nothing', () => {
  const pool = new BackendPool([{ address: 'a', port: 1, weight: 1, enabled: true }]);
  for (let i = 0; i < 100; i++)
    assert.is(pool.reportPassive({ type: 'failure', backend: 'a:1', code: 'ECONNRESET' }, 0), undefined);
});

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
