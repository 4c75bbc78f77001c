/**
 * Health-check outcomes, counted in the health-checker thread: a Map
 * increment per probe, handed to prom-client when scraped (loaded then, so a
 * thread that is never scraped never loads it).
 */
import type { Counter, Registry } from 'prom-client';

export class HealthMetrics {
  #registered: { registry: Registry; checks: Counter<'backend' | 'result'> } | undefined;
  /** Probes since the last scrape, by `backend result`. */
  readonly #pending = new Map<string, { backend: string; result: 'pass' | 'fail'; count: number }>();

  observe(backend: string, passed: boolean): void {
    const result = passed ? 'pass' : 'fail';
    const key = `${backend} ${result}`;
    const pending = this.#pending.get(key);
    if (pending) pending.count++;
    else this.#pending.set(key, { backend, result, count: 1 });
  }

  async json(): Promise<object[]> {
    if (!this.#registered) {
      const { Counter, Registry } = await import('prom-client');
      const registry = new Registry();
      const checks = new Counter({
        name: 'sluice_health_checks_total',
        help: 'Active health checks, by backend and result (pass or fail).',
        labelNames: ['backend', 'result'] as const,
        registers: [registry],
      });
      this.#registered ??= { registry, checks };
    }
    const { registry, checks } = this.#registered;
    for (const { backend, result, count } of this.#pending.values()) checks.inc({ backend, result }, count);
    this.#pending.clear();
    return registry.getMetricsAsJSON();
  }
}
