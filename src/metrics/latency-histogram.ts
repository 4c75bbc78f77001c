/**
 * A histogram without labels for the listener's hot path. prom-client's
 * Histogram costs about 250 ns per observation (label hashing, a closure per
 * call, a linear bucket search with string keys), which showed as a
 * millisecond pause every few thousand requests when the listener handed it
 * its batched durations. Here an observation is a bucket search over a
 * number array and three additions.
 *
 * It is a prom-client metric by shape: the registry reads it through `get()`,
 * which returns what prom-client's Histogram returns for the same
 * observations (test/unit/metrics/latency-histogram.test.ts compares the two), so the
 * admin endpoint's aggregation and text format treat it the same.
 */
export class LatencyHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: readonly number[];
  /** Observations per bucket, not cumulative; the last counts those above every bound. */
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(options: { name: string; help: string; buckets: readonly number[] }) {
    this.name = options.name;
    this.help = options.help;
    this.#bounds = [...options.buckets].sort((a, b) => a - b);
    this.#counts = new Float64Array(this.#bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    // A bucket counts the values up to and including its bound (Prometheus' `le`).
    while (i < bounds.length && value > bounds[i]!) i++;
    this.#counts[i]!++;
    this.#sum += value;
    this.#count++;
  }

  /** What prom-client's Histogram.get() returns, entry for entry (exemplars are never recorded). */
  get() {
    const bucket = `${this.name}_bucket`;
    const values: {
      value: number;
      metricName: string;
      exemplar: null | undefined;
      labels: { le?: number | string };
    }[] = [];
    let cumulative = 0;
    this.#bounds.forEach((le, i) => {
      cumulative += this.#counts[i]!;
      values.push({ value: cumulative, metricName: bucket, exemplar: null, labels: { le } });
    });
    values.push(
      { value: this.#count, metricName: bucket, exemplar: null, labels: { le: '+Inf' } },
      { value: this.#sum, metricName: `${this.name}_sum`, exemplar: undefined, labels: {} },
      { value: this.#count, metricName: `${this.name}_count`, exemplar: undefined, labels: {} },
    );
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }
}
