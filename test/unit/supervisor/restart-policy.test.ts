import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RestartPolicy } from '../../../src/supervisor/restart-policy.ts';

test('restarts back off exponentially, and the sixth failure within 60 s gives up', () => {
  const policy = new RestartPolicy();
  const decisions = [0, 1_000, 2_000, 3_000, 4_000, 5_000].map((at) => policy.onFailure(at));
  assert.equal(
    decisions.map((d) => d.restart),
    [true, true, true, true, true, false],
  );
  assert.equal(
    decisions.slice(0, 5).map((d) => d.delayMs),
    [100, 200, 400, 800, 1_600],
  );
  assert.is(policy.total, 5);
});

test('failures older than the window no longer count', () => {
  const policy = new RestartPolicy();
  for (let i = 0; i < 5; i++) policy.onFailure(i);
  assert.is(policy.onFailure(59_999).restart, false);
  const later = policy.onFailure(60_005);
  assert.is(later.restart, true);
  assert.is(later.recent, 1);
  assert.is(later.delayMs, 100);
});

test('the backoff is capped', () => {
  const policy = new RestartPolicy({ maxRestarts: 20, windowMs: 60_000, baseDelayMs: 100, maxDelayMs: 1_000 });
  const delays = Array.from({ length: 8 }, (_, i) => policy.onFailure(i).delayMs);
  assert.equal(delays, [100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000]);
});

test.run();
