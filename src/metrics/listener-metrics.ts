/**
 * Request metrics of one listener thread. The admin endpoint asks every
 * thread for its registry as JSON and sums them (prom-client's aggregator),
 * so the hot path only touches thread-local counters.
 */
import type { Counter, Gauge, Metric, Registry } from 'prom-client';
import { EventLoopDelay } from './event-loop-delay.ts';
import { LatencyHistogram } from './latency-histogram.ts';

/** Requests of one status from one backend since the last scrape, and the time they took. */
interface PendingCount {
  status: number;
  backend: string | undefined;
  count: number;
  seconds: number;
}

/** A listener's HTTP/2 counts (http2-front.ts), plain numbers until a scrape reads them. */
export interface Http2Counts {
  readonly sessions: number;
  readonly rapidReset: number;
}

/** prom-client's side, built at the first scrape: a thread that is never scraped never loads it. */
interface Registered {
  registry: Registry;
  requests: Counter<'code' | 'upstream' | 'backend'>;
  backendSeconds: Counter<'upstream' | 'backend'>;
  Gauge: typeof Gauge;
}

export class ListenerMetrics {
  #registered: Registered | undefined;
  #registering: Promise<Registered> | undefined;
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
  #http2: Http2Counts | undefined;

  /** This thread serves HTTP/2: its counts are among its metrics from the next scrape on. */
  countHttp2(counts: Http2Counts): void {
    this.#http2 = counts;
  }

  /** From now on, this thread's event-loop delay is among its metrics, labelled `thread`. */
  watchEventLoop(thread: number): void {
    if (this.#eventLoop) return;
    this.#eventLoop = new EventLoopDelay(thread);
    if (this.#registered) this.#eventLoop.register(this.#registered.registry, this.#registered.Gauge);
  }

  stop(): void {
    this.#eventLoop?.stop();
  }

  constructor(upstreamOf: (backend: string) => string | undefined = () => undefined) {
    this.#upstreamOf = upstreamOf;
  }

  /** The registry, created once however many callers wait on prom-client's import at the same time. */
  #registry(): Promise<Registered> {
    return (this.#registering ??= this.#register());
  }

  async #register(): Promise<Registered> {
    const { Counter, Gauge, Registry } = await import('prom-client');
    const registry = new Registry();
    const requests = new Counter({
      name: 'sluice_requests_total',
      help: 'Requests answered, by status code and backend (none: answered by the proxy itself).',
      labelNames: ['code', 'upstream', 'backend'] as const,
      registers: [registry],
    });
    /** With sluice_requests_total, each backend's mean latency (the dashboard shows it): one float add per request. */
    const backendSeconds = new Counter({
      name: 'sluice_backend_request_seconds_total',
      help: 'Time spent on the requests each backend answered, from the request head to the end of the response.',
      labelNames: ['upstream', 'backend'] as const,
      registers: [registry],
    });
    registry.registerMetric(this.#duration as unknown as Metric);
    this.#eventLoop?.register(registry, Gauge);
    const http2 = this.#http2;
    if (http2) {
      new Counter({
        name: 'sluice_http2_connections_total',
        help: 'HTTP/2 connections accepted.',
        registers: [registry],
        collect() {
          this.reset();
          this.inc(http2.sessions);
        },
      });
      new Counter({
        name: 'sluice_http2_rapid_reset_total',
        help: 'HTTP/2 connections closed with GOAWAY ENHANCE_YOUR_CALM for resetting streams faster than completing them.',
        registers: [registry],
        collect() {
          this.reset();
          this.inc(http2.rapidReset);
        },
      });
    }
    return (this.#registered = { registry, requests, backendSeconds, Gauge });
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

  #flush({ requests, backendSeconds }: Registered): void {
    for (const pending of this.#pendingCounts.values()) {
      if (pending.count > 0) {
        const upstream = pending.backend === undefined ? 'none' : (this.#upstreamOf(pending.backend) ?? 'none');
        requests.inc({ code: String(pending.status), upstream, backend: pending.backend ?? 'none' }, pending.count);
        if (pending.backend !== undefined) {
          backendSeconds.inc({ upstream, backend: pending.backend }, pending.seconds);
        }
      }
      pending.count = 0;
      pending.seconds = 0;
    }
  }

  async json(): Promise<object[]> {
    const registered = await this.#registry();
    this.#flush(registered);
    return registered.registry.getMetricsAsJSON();
  }
}
