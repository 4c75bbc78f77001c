/** The health-checker actor's thread: probes the backends and reports flips. */
import { HealthChecker } from '../health/checker.ts';
import { createLogger, reopenLogFiles, type Logger } from '../log.ts';
import { HealthMetrics } from '../metrics/health-metrics.ts';
import type { ActorInit, BackendSpec, HealthCheckerApi, HealthEvent } from '../protocol.ts';
import { exposeActor } from './expose.ts';
import { runTestHooks } from './test-hooks.ts';

let checker: HealthChecker | undefined;
const metrics = new HealthMetrics();
let log: Logger | undefined;
/** Backends added or removed while the checker was still starting: applied once it exists. */
let early: ((c: HealthChecker) => void)[] = [];
const withChecker = (change: (c: HealthChecker) => void) => (checker ? change(checker) : early.push(change));

const api: HealthCheckerApi = {
  async start(
    { config, log: logOptions }: ActorInit,
    onEvent: (event: HealthEvent) => void,
    healthy: string[] = [],
    discovered: BackendSpec[] = [],
  ) {
    await runTestHooks('health-checker', 0);
    const logger = createLogger(logOptions, { actor: 'health-checker' });
    log = logger;
    checker = new HealthChecker(
      config,
      (observation, from) => {
        logger.info(
          {
            backend: observation.backend,
            from: from ? 'healthy' : 'unhealthy',
            to: observation.healthy ? 'healthy' : 'unhealthy',
            reason: observation.reason,
          },
          `backend ${observation.backend} is ${observation.healthy ? 'healthy' : 'unhealthy'} (${observation.reason})`,
        );
        onEvent({ type: 'health.changed', observation, from });
      },
      (backend, passed) => metrics.observe(backend, passed),
    );
    checker.assumeHealthy(healthy);
    for (const spec of discovered) checker.addBackend(spec);
    for (const change of early) change(checker);
    early = [];
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
    withChecker((c) => c.addBackend(spec));
  },
  removeBackend(backend) {
    withChecker((c) => c.removeBackend(backend));
  },
  stop() {
    checker?.stop();
    log?.flush();
    return Promise.resolve();
  },
};

exposeActor(api);
