/** Health hysteresis: a backend flips only after its thresholds. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { initialTally, observeHealth, type HealthTally } from '../../../src/health/hysteresis.ts';

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

test.run();
