/** The balancing policies, without sockets: exact choices, distributions and the ring's movement bound. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConsistentHash } from '../../../src/pool/balancers/consistent-hash.ts';
import { InFlight } from '../../../src/pool/balancers/in-flight.ts';
import { LeastConnections } from '../../../src/pool/balancers/least-connections.ts';
import { PowerOfTwoChoices } from '../../../src/pool/balancers/power-of-two.ts';
import { statusMatcher } from '../../../src/health/expected-status.ts';
import { jittered } from '../../../src/health/checker.ts';

interface C {
  id: string;
  weight: number;
  selectable: boolean;
  slot: number;
}
const backends = (weights: number[]): C[] =>
  weights.map((weight, slot) => ({ id: `b${slot}`, weight, selectable: true, slot }));

/** A seeded generator (mulberry32), so distributions are the same on every run. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('in-flight counts: each listener thread writes its own row, readers see the sum, a restarted thread starts from zero', () => {
  const shared = InFlight.buffer(4, 2);
  const first = new InFlight(shared, 0);
  const second = new InFlight(shared, 1);
  const reader = new InFlight(shared);
  first.acquire(2);
  first.acquire(2);
  second.acquire(2);
  second.acquire(3);
  assert.equal(
    [0, 1, 2, 3].map((slot) => reader.get(slot)),
    [0, 0, 3, 1],
  );
  second.release(2);
  assert.is(reader.get(2), 2);
  // Thread 1 dies with a request counted on slot 3: its successor's row starts from zero, thread 0's is kept.
  new InFlight(shared, 1).resetOwn();
  assert.equal([reader.get(2), reader.get(3)], [2, 0]);
  // A replaced thread that still releases what it counted never drives a count below zero.
  second.release(3);
  assert.is(reader.get(3), 0);
  assert.throws(() => new InFlight(shared, 2), /no in-flight row/);
});

test('least connections: fewest in-flight relative to weight; ties rotate', () => {
  const inFlight = new InFlight(InFlight.buffer(8));
  const lc = new LeastConnections<C>(inFlight);
  const set = backends([1, 2, 1]);
  lc.reset(set);
  // Idle: ties rotate through every backend.
  assert.equal(new Set([lc.pick()!.id, lc.pick()!.id, lc.pick()!.id]), new Set(['b0', 'b1', 'b2']));
  inFlight.acquire(0); // b0: 1/1 = 1
  inFlight.acquire(1); // b1: 1/2 = 0.5
  inFlight.acquire(2);
  inFlight.acquire(2); // b2: 2/1 = 2
  assert.is(lc.pick()!.id, 'b1');
  inFlight.acquire(1);
  inFlight.acquire(1); // b1: 3/2 = 1.5
  assert.is(lc.pick()!.id, 'b0');
  assert.is(lc.pick(undefined, new Set(['b0']))!.id, 'b1');
  inFlight.release(2);
  inFlight.release(2);
  assert.is(lc.pick()!.id, 'b2');
  lc.reset(set.map((c) => ({ ...c, selectable: c.id === 'b0' })));
  assert.is(lc.pick()!.id, 'b0', 'only selectable backends are chosen');
});

test('power of two choices: picks follow the weights when idle, and avoid the loaded backend', () => {
  const inFlight = new InFlight(InFlight.buffer(8));
  const p2c = new PowerOfTwoChoices<C>(inFlight, seeded(42));
  p2c.reset(backends([3, 1]));
  const counts = { b0: 0, b1: 0 };
  for (let i = 0; i < 10_000; i++) counts[p2c.pick()!.id as 'b0' | 'b1']++;
  // Idle ties go to the first draw, so the heavier backend wins about its weight share.
  const share = counts.b0 / 10_000;
  assert.ok(share > 0.7 && share < 0.8, `share of the weight-3 backend: ${share}`);
  // With b0 busy, every pick where both were drawn goes to b1.
  for (let i = 0; i < 10; i++) inFlight.acquire(0);
  const loaded = { b0: 0, b1: 0 };
  for (let i = 0; i < 10_000; i++) loaded[p2c.pick()!.id as 'b0' | 'b1']++;
  assert.ok(loaded.b1 / 10_000 > 0.35, `b1 took ${loaded.b1} of 10000 while b0 was loaded`);
  assert.ok(loaded.b1 > counts.b1 * 1.3);
});

test('power of two choices: spreads load far more evenly than one random choice', () => {
  const inFlight = new InFlight(InFlight.buffer(16));
  const random = seeded(7);
  const p2c = new PowerOfTwoChoices<C>(inFlight, random);
  const set = backends(Array<number>(10).fill(1));
  p2c.reset(set);
  // Requests never finish: in-flight counts are the balls-in-bins load.
  for (let i = 0; i < 1_000; i++) inFlight.acquire(p2c.pick()!.slot);
  const loads = set.map((c) => inFlight.get(c.slot));
  assert.ok(Math.max(...loads) - Math.min(...loads) <= 4, `loads ${loads.join(',')}`);
});

test('consistent hash: the same key always goes to the same backend', () => {
  const ring = new ConsistentHash<C>();
  ring.reset(backends([1, 1, 1, 1]));
  for (const key of ['10.0.0.1', '/cart', 'session=abc', '']) {
    const first = ring.pick(key)!.id;
    for (let i = 0; i < 5; i++) assert.is(ring.pick(key)!.id, first);
  }
});

test('consistent hash: adding a 5th backend moves about 1/5 of 10,000 keys, all to the new one', () => {
  const ring = new ConsistentHash<C>();
  const four = backends([1, 1, 1, 1]);
  ring.reset(four);
  const keys = Array.from({ length: 10_000 }, (_, i) => `client-${i}`);
  const before = keys.map((k) => ring.pick(k)!.id);
  ring.reset([...four, { id: 'b4', weight: 1, selectable: true, slot: 4 }]);
  const after = keys.map((k) => ring.pick(k)!.id);
  const moved = keys.filter((_, i) => before[i] !== after[i]);
  assert.ok(moved.length / keys.length <= 0.25, `moved ${moved.length} of 10000`);
  assert.ok(moved.length / keys.length >= 0.12, `moved ${moved.length} of 10000: the new backend must get its share`);
  assert.ok(
    keys.every((_, i) => before[i] === after[i] || after[i] === 'b4'),
    'keys only move to the new backend',
  );
});

test('consistent hash: weights set the share of keys', () => {
  const ring = new ConsistentHash<C>();
  ring.reset(backends([3, 1]));
  let heavy = 0;
  for (let i = 0; i < 10_000; i++) if (ring.pick(`k${i}`)!.id === 'b0') heavy++;
  assert.ok(heavy / 10_000 > 0.68 && heavy / 10_000 < 0.82, `weight-3 share ${heavy / 10_000}`);
});

test("consistent hash: an unhealthy backend's keys move to the next on the ring and come back when it recovers", () => {
  const ring = new ConsistentHash<C>();
  const all = backends([1, 1, 1, 1]);
  ring.reset(all);
  const keys = Array.from({ length: 2_000 }, (_, i) => `user-${i}`);
  const before = keys.map((k) => ring.pick(k)!.id);
  ring.reset(all.map((c) => ({ ...c, selectable: c.id !== 'b2' })));
  const during = keys.map((k) => ring.pick(k)!.id);
  keys.forEach((_, i) => {
    if (before[i] === 'b2') assert.is.not(during[i], 'b2');
    else assert.is(during[i], before[i], 'keys of healthy backends stay put');
  });
  ring.reset(all);
  assert.equal(
    keys.map((k) => ring.pick(k)!.id),
    before,
  );
  // Nothing selectable: no answer.
  ring.reset(all.map((c) => ({ ...c, selectable: false })));
  assert.is(ring.pick('x'), undefined);
});

test('expected_status: a code, a list or a range', () => {
  assert.ok(statusMatcher(204)(204));
  assert.not.ok(statusMatcher(204)(200));
  assert.ok(statusMatcher([200, 302])(302));
  assert.not.ok(statusMatcher([200, 302])(301));
  const range = statusMatcher('200-399');
  assert.equal([199, 200, 399, 400].map(range), [false, true, true, false]);
});

test('health-check intervals are jittered within ±10%', () => {
  assert.is(
    jittered(2_000, () => 0),
    1_800,
  );
  assert.is(
    jittered(2_000, () => 0.5),
    2_000,
  );
  assert.is(
    jittered(2_000, () => 0.999999),
    2_200,
  );
});

test.run();
