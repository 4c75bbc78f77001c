/**
 * Event-loop delay of one listener thread, as gauges labelled `thread`: the
 * delay a request waits before its thread gets to it. Each thread has its
 * own loop, so the main thread's `nodejs_eventloop_lag_*` cannot show it.
 * Values cover the time since the previous scrape (the histogram is reset
 * at each one), as prom-client's own event-loop metrics do.
 */
import { monitorEventLoopDelay, type ELDHistogram } from 'node:perf_hooks';
import type { Gauge, Registry } from 'prom-client';

/** How often the loop is sampled, in ms (prom-client's default precision). */
const RESOLUTION_MS = 10;

const NS_PER_SECOND = 1e9;

export class EventLoopDelay {
  readonly #histogram: ELDHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  readonly #thread: number;

  /** Sampling starts now; the gauges exist once `register` is called (at the first scrape). */
  constructor(thread: number) {
    this.#thread = thread;
    this.#histogram.enable();
  }

  /** `GaugeClass`: prom-client's, which the caller loaded (lazily: see ListenerMetrics). */
  register(registry: Registry, GaugeClass: typeof Gauge): void {
    const histogram = this.#histogram;
    const labels = { thread: String(this.#thread) };
    const stats = [
      ['p50', 'median', () => histogram.percentile(50)],
      ['p99', '99th percentile of the', () => histogram.percentile(99)],
      ['max', 'largest', () => histogram.max],
    ] as const;
    for (const [suffix, what, read] of stats) {
      new GaugeClass({
        name: `sluice_listener_event_loop_delay_${suffix}_seconds`,
        help: `The ${what} event-loop delay of each listener thread since the previous scrape.`,
        labelNames: ['thread'] as const,
        registers: [registry],
        collect() {
          this.set(labels, histogram.count > 0 ? read() / NS_PER_SECOND : 0);
          // The last gauge read resets the window for the next scrape.
          if (suffix === 'max') histogram.reset();
        },
      });
    }
  }

  stop(): void {
    this.#histogram.disable();
  }
}
