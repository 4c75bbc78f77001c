/**
 * Request metrics of one listener thread. The admin endpoint asks every
 * thread for its registry as JSON and sums them (prom-client's aggregator),
 * so the hot path only touches thread-local counters.
 */
import { Counter, Registry, type Metric } from 'prom-client';
import { EventLoopDelay } from './event-loop-delay.ts';
import { LatencyHistogram } from './latency-histogram.ts';

export class ListenerMetrics {
  readonly registry = new Registry();
  readonly #requests = new Counter({
    name: 'sluice_requests_total',
    help: 'Requests answered, by status code and backend (none: answered by the proxy itself).',
    labelNames: ['code', 'upstream', 'backend'] as const,
    registers: [this.registry],
  });
  readonly #duration = new LatencyHistogram({
    name: 'sluice_request_duration_seconds',
    help: 'Time from the request head to the end of the response.',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });

  /** Counts since the last scrape, by status and backend: a Map increment per request, not prom-client's label hashing. */
  readonly #pendingCounts = new Map<string, { status: number; backend: string | undefined; count: number }>();

  /** The upstream a backend belongs to, looked up at scrape time only: the hot path keeps one label. */
  readonly #upstreamOf: (backend: string) => string | undefined;

  #eventLoop: EventLoopDelay | undefined;

  /** From now on, this thread's event-loop delay is among its metrics, labelled `thread`. */
  watchEventLoop(thread: number): void {
    this.#eventLoop ??= new EventLoopDelay(this.registry, thread);
  }

  stop(): void {
    this.#eventLoop?.stop();
  }

  constructor(upstreamOf: (backend: string) => string | undefined = () => undefined) {
    this.#upstreamOf = upstreamOf;
    this.registry.registerMetric(this.#duration as unknown as Metric);
  }

  /** The entry of the last request: the next one is most often the same status from the same backend. */
  #last: { status: number; backend: string | undefined; count: number } | undefined;

  observe(status: number, backend: string | undefined, seconds: number): void {
    const last = this.#last;
    if (last !== undefined && last.status === status && last.backend === backend) last.count++;
    else this.#counterFor(status, backend).count++;
    this.#duration.observe(seconds);
  }

  #counterFor(status: number, backend: string | undefined) {
    const key = `${status} ${backend}`;
    let pending = this.#pendingCounts.get(key);
    if (!pending) this.#pendingCounts.set(key, (pending = { status, backend, count: 0 }));
    this.#last = pending;
    return pending;
  }

  #flush(): void {
    for (const pending of this.#pendingCounts.values()) {
      if (pending.count > 0) {
        const upstream = pending.backend === undefined ? 'none' : (this.#upstreamOf(pending.backend) ?? 'none');
        this.#requests.inc({ code: String(pending.status), upstream, backend: pending.backend ?? 'none' }, pending.count);
      }
      pending.count = 0;
    }
  }

  json(): Promise<object[]> {
    this.#flush();
    return this.registry.getMetricsAsJSON() as Promise<object[]>;
  }
}
