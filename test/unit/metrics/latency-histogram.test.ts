/**
 * The listener's own histogram must read exactly as prom-client's Histogram
 * would for the same observations: the admin endpoint aggregates and prints
 * both the same way.
 */
import { Histogram, Registry, type Metric } from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LatencyHistogram } from '../../../src/metrics/latency-histogram.ts';

const buckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function pair() {
  const options = { name: 'probe_seconds', help: 'Probe.', buckets };
  const reference = new Histogram({ ...options, registers: [] });
  const ours = new LatencyHistogram(options);
  return { reference, ours };
}

test('the same JSON as prom-client for values inside, on and beyond the bounds', async () => {
  const { reference, ours } = pair();
  // Every bound itself (a value on a bound belongs to that bucket), values between, 0 and past the last bound.
  const values = [0, ...buckets, ...buckets.map((b) => b * 1.5), 45, 1e6];
  let seed = 7;
  for (let i = 0; i < 5000; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    values.push((seed / 2 ** 31) * 3);
  }
  for (const value of values) {
    reference.observe(value);
    ours.observe(value);
  }
  assert.equal(await ours.get(), await reference.get());
});

test('the same Prometheus text through a registry', async () => {
  const { reference, ours } = pair();
  for (const value of [0.0004, 0.003, 0.003, 0.2, 7]) {
    reference.observe(value);
    ours.observe(value);
  }
  const text = async (metric: unknown) => {
    const registry = new Registry();
    registry.registerMetric(metric as Metric);
    return registry.metrics();
  };
  assert.is(await text(ours), await text(reference));
});

test.run();
