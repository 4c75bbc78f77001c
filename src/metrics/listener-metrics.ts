/**
 * Request metrics of one listener thread. The admin endpoint asks every
 * thread for its registry as JSON and sums them (prom-client's aggregator),
 * so the hot path only touches thread-local counters.
 */
import { Counter, Histogram, Registry } from 'prom-client';

export class ListenerMetrics {
  readonly registry = new Registry();
  readonly #requests = new Counter({
    name: 'sluice_requests_total',
    help: 'Requests answered, by status code and backend (none: answered by the proxy itself).',
    labelNames: ['code', 'backend'] as const,
    registers: [this.registry],
  });
  readonly #duration = new Histogram({
    name: 'sluice_request_duration_seconds',
    help: 'Time from the request head to the end of the response.',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  observe(status: number, backend: string | undefined, seconds: number): void {
    this.#requests.inc({ code: String(status), backend: backend ?? 'none' });
    this.#duration.observe(seconds);
  }

  json(): Promise<object[]> {
    return this.registry.getMetricsAsJSON() as Promise<object[]>;
  }
}
