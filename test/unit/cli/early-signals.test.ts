import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EarlySignals } from '../../../src/cli/early-signals.ts';

test('signals that arrive while sluice is still loading are kept for the supervisor, not fatal', async () => {
  const early = new EarlySignals();
  const delivered = new Promise((resolve) => process.once('SIGTERM', resolve));
  // Signal watchers do not keep the event loop alive: this bounded timer does, until delivery.
  const keepAlive = setTimeout(() => {
    /* nothing to do: the timer only holds the loop open */
  }, 5_000);
  process.kill(process.pid, 'SIGTERM');
  await delivered;
  clearTimeout(keepAlive);
  assert.equal(early.take(), ['SIGTERM']);
  assert.equal(early.take(), [], 'taken once');
  assert.is(process.listenerCount('SIGTERM'), 0, 'recording stops when taken');
});

test.run();
