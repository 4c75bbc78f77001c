/** Health-check outcomes, counted in the health-checker thread. */
import { Counter, Registry } from 'prom-client';

export class HealthMetrics {
  readonly registry = new Registry();
  readonly #checks = new Counter({
    name: 'sluice_health_checks_total',
    help: 'Active health checks, by backend and result (pass or fail).',
    labelNames: ['backend', 'result'] as const,
    registers: [this.registry],
  });

  observe(backend: string, passed: boolean): void {
    this.#checks.inc({ backend, result: passed ? 'pass' : 'fail' });
  }

  json(): Promise<object[]> {
    return this.registry.getMetricsAsJSON();
  }
}
