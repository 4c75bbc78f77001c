/**
 * The admin /metrics endpoint: the supervisor's own gauges (lifecycle,
 * backends, connections, restarts, drain) plus every thread's registry,
 * summed by prom-client's aggregator, then the process metrics.
 */
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { actorKinds, lifecycleStates } from '../protocol.ts';
import type { SupervisorView } from '../supervisor/supervisor-view.ts';

export class SupervisorMetrics {
  readonly #registry = new Registry();
  /**
   * prom-client's default collectors, from the main thread: RSS, CPU, file
   * descriptors and the like are the whole process's; heap, GC and
   * event-loop lag are the main thread's (listener threads report their own
   * loop delay). Rendered apart: the aggregator would drop
   * process_start_time_seconds (its aggregator is `omit`).
   */
  readonly #process = new Registry();
  readonly #supervisor: SupervisorView;

  constructor(supervisor: SupervisorView) {
    this.#supervisor = supervisor;
    collectDefaultMetrics({ register: this.#process });
    const registers = [this.#registry];
    new Gauge({
      name: 'sluice_active_connections',
      help: 'Client connections open now, over all listener threads.',
      registers,
      collect() {
        this.set(supervisor.activeConnections());
      },
    });
    new Counter({
      name: 'sluice_connections_rejected_total',
      help: 'Client connections closed at once because max_connections was reached.',
      registers,
      collect() {
        this.reset();
        this.inc(supervisor.rejectedConnections());
      },
    });
    new Gauge({
      name: 'sluice_lifecycle_state',
      help: '1 for the current lifecycle state, 0 for the others.',
      labelNames: ['state'] as const,
      registers,
      collect() {
        for (const state of lifecycleStates) this.set({ state }, supervisor.state === state ? 1 : 0);
      },
    });
    new Gauge({
      name: 'sluice_backend_healthy',
      help: '1 when the backend can be chosen (enabled, healthy, not ejected).',
      labelNames: ['upstream', 'backend'] as const,
      registers,
      collect() {
        this.reset();
        for (const b of supervisor.backends()) {
          this.set(
            { upstream: b.upstream, backend: `${b.address}:${b.port}` },
            b.enabled && b.healthy && !b.ejected ? 1 : 0,
          );
        }
      },
    });
    new Counter({
      name: 'sluice_actor_restarts_total',
      help: 'Actor threads restarted by the supervisor, by kind.',
      labelNames: ['kind'] as const,
      registers,
      collect() {
        this.reset();
        const workers = supervisor.workers();
        for (const kind of actorKinds)
          this.inc(
            { kind },
            workers.filter((w) => w.kind === kind).reduce((sum, w) => sum + w.restarts, 0),
          );
      },
    });
    new Counter({
      name: 'sluice_dns_resolutions_total',
      help: "DNS resolutions of upstreams with discovery, by result: ok, or Node's error code (ENOTFOUND…).",
      labelNames: ['upstream', 'result'] as const,
      registers,
      collect() {
        this.reset();
        for (const { upstream, result, count } of supervisor.dnsResolutions()) {
          this.inc({ upstream, result }, count);
        }
      },
    });
    new Gauge({
      name: 'sluice_tls_certificate_expiry_seconds',
      help: 'When each certificate of a TLS listener expires (Unix time, seconds); name: its file.',
      labelNames: ['name'] as const,
      registers,
      collect() {
        this.reset();
        for (const { name, not_after } of supervisor.certificates()) this.set({ name }, Date.parse(not_after) / 1000);
      },
    });
    new Gauge({
      name: 'sluice_drain_duration_seconds',
      help: 'How long the last drain took, from SIGTERM to the last connection closed.',
      registers,
      collect() {
        const seconds = supervisor.drainDurationSeconds;
        if (seconds !== undefined) this.set(seconds);
      },
    });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    const own = await this.#registry.getMetricsAsJSON();
    const threads = await this.#supervisor.threadMetrics();
    const merged = AggregatorRegistry.aggregate([own, ...threads]);
    return { contentType: merged.contentType, body: `${await merged.metrics()}\n${await this.#process.metrics()}` };
  }
}
