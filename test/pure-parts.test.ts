/** The pure building blocks: balancing, health hysteresis, header rewriting, endpoint answers. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SmoothWeightedRoundRobin } from '../src/pool/smooth-wrr.ts';
import { initialTally, observeHealth, type HealthTally } from '../src/health/hysteresis.ts';
import { clientResponseHeaders, isLoop, upstreamRequestHeaders } from '../src/listener/headers.ts';
import { answerEndpoint } from '../src/listener/endpoints.ts';
import { BackendPool, healthyCount } from '../src/pool/backend-pool.ts';

const picks = (rr: SmoothWeightedRoundRobin<{ id: string; weight: number }>, n: number) =>
  Array.from({ length: n }, () => rr.pick()?.id).join(' ');

test('smooth WRR: weights 5:1:1 give a a b a c a a, as nginx does', () => {
  const rr = new SmoothWeightedRoundRobin([{ id: 'a', weight: 5 }, { id: 'b', weight: 1 }, { id: 'c', weight: 1 }]);
  assert.is(picks(rr, 7), 'a a b a c a a');
  assert.is(picks(rr, 7), 'a a b a c a a');
});

test('smooth WRR: 3:1, exclusions, and an empty set', () => {
  const rr = new SmoothWeightedRoundRobin([{ id: 'a', weight: 3 }, { id: 'b', weight: 1 }]);
  assert.is(picks(rr, 8), 'a a b a a a b a');
  assert.is(rr.pick(new Set(['a']))?.id, 'b');
  assert.is(rr.pick(new Set(['a', 'b'])), undefined);
  assert.is(new SmoothWeightedRoundRobin([]).pick(), undefined);
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
  const pool = new BackendPool([{ address: '10.0.0.1', port: 80, weight: 2 }, { address: '::1', port: 81, weight: 1 }]);
  assert.is(healthyCount(pool.snapshot()), 0);
  assert.equal(pool.snapshot().backends.map((b) => b.id), ['10.0.0.1:80', '[::1]:81']);
  assert.ok(pool.applyHealth({ backend: '10.0.0.1:80', healthy: true, reason: 'status 200' }));
  assert.not.ok(pool.applyHealth({ backend: '10.0.0.1:80', healthy: true, reason: 'status 200' }));
  assert.not.ok(pool.applyHealth({ backend: 'unknown:1', healthy: true, reason: 'status 200' }));
  assert.is(pool.snapshot().version, 1);
  assert.is(healthyCount(pool.snapshot()), 1);
});

test('request headers: hop-by-hop and Connection-named headers dropped, order and case kept, forwarding headers added', () => {
  const out = upstreamRequestHeaders(
    ['Host', 'example.test', 'Connection', 'keep-alive, X-Private', 'X-Private', 'secret', 'Keep-Alive', 'timeout=5', 'TE', 'trailers', 'Accept', '*/*', 'X-Forwarded-For', '10.1.1.1', 'Expect', '100-continue'],
    { clientIp: '127.0.0.1', proto: 'http' },
  );
  assert.equal(out, [
    'Host', 'example.test',
    'Accept', '*/*',
    'x-forwarded-for', '10.1.1.1, 127.0.0.1',
    'x-forwarded-proto', 'http',
    'x-forwarded-host', 'example.test',
    'via', '1.1 sluice',
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
    clientResponseHeaders({ 'content-type': 'text/plain', 'transfer-encoding': 'chunked', connection: 'x-hop', 'x-hop': '1', 'set-cookie': ['a=1', 'b=2'] }),
    { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] },
  );
});

test('endpoints: /ready holds only when healthy with backends and a live pool', () => {
  const healthy = { state: 'healthy' as const, poolHealthy: true };
  assert.is(answerEndpoint('ready', { status: healthy, healthyBackends: 1 }).status, 200);
  assert.is(answerEndpoint('ready', { status: healthy, healthyBackends: 0 }).status, 503);
  assert.is(answerEndpoint('ready', { status: { ...healthy, poolHealthy: false }, healthyBackends: 1 }).status, 503);
  assert.is(answerEndpoint('ready', { status: { ...healthy, state: 'draining' }, healthyBackends: 1 }).status, 503);
  assert.equal(answerEndpoint('health', { status: { ...healthy, state: 'starting' }, healthyBackends: 1 }), { status: 503, body: { status: 'unhealthy', state: 'starting' } });
  assert.is(answerEndpoint('live', { status: { ...healthy, state: 'draining' }, healthyBackends: 0 }).status, 200);
});

test.run();
