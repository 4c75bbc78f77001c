/**
 * Request metrics of one listener thread. The admin endpoint asks every
 * thread for its registry as JSON and sums them (prom-client's aggregator),
 * so the hot path only touches thread-local counters.
 */
import { Counter, Registry, type Metric } from 'prom-client';
import { EventLoopDelay } from './event-loop-delay.ts';
import { LatencyHistogram } from './latency-histogram.ts';

/** Requests of one status from one backend since the last scrape, and the time they took. */
interface PendingCount {
  status: number;
  backend: string | undefined;
  count: number;
  seconds: number;
}

export class ListenerMetrics {
  readonly registry = new Registry();
  readonly #requests = new Counter({
    name: 'sluice_requests_total',
    help: 'Requests answered, by status code and backend (none: answered by the proxy itself).',
    labelNames: ['code', 'upstream', 'backend'] as const,
    registers: [this.registry],
  });
  /** With sluice_requests_total, each backend's mean latency (the dashboard shows it): one float add per request. */
  readonly #backendSeconds = new Counter({
    name: 'sluice_backend_request_seconds_total',
    help: 'Time spent on the requests each backend answered, from the request head to the end of the response.',
    labelNames: ['upstream', 'backend'] as const,
    registers: [this.registry],
  });
  readonly #duration = new LatencyHistogram({
    name: 'sluice_request_duration_seconds',
    help: 'Time from the request head to the end of the response.',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });

  /** Counts since the last scrape, by status and backend: a Map increment per request, not prom-client's label hashing. */
  readonly #pendingCounts = new Map<string, PendingCount>();

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
  #last: PendingCount | undefined;

  observe(status: number, backend: string | undefined, seconds: number): void {
    let pending = this.#last;
    if (pending?.status !== status || pending.backend !== backend) {
      pending = this.#counterFor(status, backend);
    }
    pending.count++;
    pending.seconds += seconds;
    this.#duration.observe(seconds);
  }

  #counterFor(status: number, backend: string | undefined) {
    const key = `${status} ${backend}`;
    let pending = this.#pendingCounts.get(key);
    if (!pending) this.#pendingCounts.set(key, (pending = { status, backend, count: 0, seconds: 0 }));
    this.#last = pending;
    return pending;
  }

  #flush(): void {
    for (const pending of this.#pendingCounts.values()) {
      if (pending.count > 0) {
        const upstream = pending.backend === undefined ? 'none' : (this.#upstreamOf(pending.backend) ?? 'none');
        this.#requests.inc({ code: String(pending.status), upstream, backend: pending.backend ?? 'none' }, pending.count);
        if (pending.backend !== undefined) {
          this.#backendSeconds.inc({ upstream, backend: pending.backend }, pending.seconds);
        }
      }
      pending.count = 0;
      pending.seconds = 0;
    }
  }

  json(): Promise<object[]> {
    this.#flush();
    return this.registry.getMetricsAsJSON();
  }
}
