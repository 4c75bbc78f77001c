/** The health-checker actor's thread: probes the backends and reports flips. */
import { HealthChecker } from '../health/checker.ts';
import { createLogger, reopenLogFiles, type Logger } from '../log.ts';
import { HealthMetrics } from '../metrics/health-metrics.ts';
import type { ActorInit, HealthCheckerApi, HealthEvent } from '../protocol.ts';
import { exposeActor } from './expose.ts';
import { runTestHooks } from './test-hooks.ts';

let checker: HealthChecker | undefined;
const metrics = new HealthMetrics();
let log: Logger | undefined;

const api: HealthCheckerApi = {
  async start({ config, log: logOptions }: ActorInit, onEvent: (event: HealthEvent) => void, healthy: string[] = []) {
    await runTestHooks('health-checker', 0);
    log = createLogger(logOptions, { actor: 'health-checker' });
    checker = new HealthChecker(config, (observation, from) => {
      log!.info(
        { backend: observation.backend, from: from ? 'healthy' : 'unhealthy', to: observation.healthy ? 'healthy' : 'unhealthy', reason: observation.reason },
        `backend ${observation.backend} is ${observation.healthy ? 'healthy' : 'unhealthy'} (${observation.reason})`,
      );
      onEvent({ type: 'health.changed', observation, from });
    }, (backend, passed) => metrics.observe(backend, passed));
    checker.assumeHealthy(healthy);
    checker.start();
  },
  markUnhealthy(backend) {
    checker?.markUnhealthy(backend);
  },
  metrics: () => metrics.json(),
  lastProbes: () => checker?.lastProbes() ?? [],
  heartbeat: () => Date.now(),
  reopenLog: reopenLogFiles,
  reconfigure(config) {
    checker?.reconfigure(config);
  },
  addBackend(spec) {
    checker?.addBackend(spec);
  },
  removeBackend(backend) {
    checker?.removeBackend(backend);
  },
  async stop() {
    checker?.stop();
    log?.flush();
  },
};

exposeActor(api);
