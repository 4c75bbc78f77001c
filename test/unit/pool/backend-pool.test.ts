/** The backend pool and its smooth weighted round robin: health, passive ejection, reloads. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SmoothWeightedRoundRobin } from '../../../src/pool/balancers/smooth-wrr.ts';
import { BackendPool, selectableCount } from '../../../src/pool/backend-pool.ts';

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

test.run();
