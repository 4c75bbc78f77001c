/**
 * The pool actor's thread: owns the backend set (addresses, weights, health,
 * ejections) and publishes a snapshot to the supervisor, which hands it to
 * every listener, whenever routing changes. It decides passive ejections
 * from the failures the listeners report, and resolves the upstreams whose
 * backends come from DNS (`discovery.ts`): a new answer is a membership
 * change like a reload's, never something a request waits for.
 */
import { createLogger, reopenLogFiles, type Logger } from '../log.ts';
import type { Config } from '../config/schema.ts';
import { allBackends, upstreamGroups } from '../config/upstream-groups.ts';
import { BackendPool, type PassivePolicies, type PassivePolicy } from '../pool/backend-pool.ts';
import type { ActorInit, HealthObservation, PassiveReport, PoolApi, PoolEvent, PoolSeed } from '../protocol.ts';
import { UpstreamDiscovery } from '../discovery/upstream-discovery.ts';
import { exposeActor } from './expose.ts';
import { runTestHooks } from './test-hooks.ts';

let pool: BackendPool | undefined;
let emit: ((event: PoolEvent) => void) | undefined;
let log: Logger | undefined;
let ejectionTimer: NodeJS.Timeout | undefined;
let retireTimer: NodeJS.Timeout | undefined;
let beats = 0;
let discovery: UpstreamDiscovery | undefined;

function started(): BackendPool {
  if (!pool) throw new Error('pool actor not started');
  return pool;
}

function publish(): void {
  emit?.({ type: 'pool.published', snapshot: started().snapshot(Date.now()) });
}

/** One timer, for the ejection that ends first. */
function scheduleEjectionEnd(): void {
  clearTimeout(ejectionTimer);
  const end = started().nextEjectionEnd();
  if (end === undefined) return;
  ejectionTimer = setTimeout(
    () => {
      if (started().expireEjections(Date.now())) publish();
      scheduleEjectionEnd();
    },
    Math.max(0, end - Date.now()),
  );
}

/** Each upstream's passive-health policy (its own, or the top-level one it inherits). */
function passivePolicies(config: Config): PassivePolicies {
  const policies = new Map<string, PassivePolicy | null>();
  for (const group of upstreamGroups(config)) {
    const passive = group.health_check.passive;
    policies.set(group.name, passive && { failures: passive.failures, ejectionMs: passive.ejection_ms });
  }
  return policies;
}

const api: PoolApi = {
  async start({ config, log: logOptions }: ActorInit, onEvent: (event: PoolEvent) => void, seed?: PoolSeed) {
    await runTestHooks('pool', 0);
    log = createLogger(logOptions, { actor: 'pool' });
    emit = onEvent;
    discovery = new UpstreamDiscovery(started, log, onEvent, publish);
    // A restarted pool keeps what DNS gave its predecessor until its own first answer.
    const kept = discovery.reconfigure(config, seed?.discovered ?? []);
    pool = new BackendPool([...allBackends(config), ...kept], passivePolicies(config), seed?.version);
    for (const observation of seed?.health ?? []) pool.applyHealth(observation);
    log.debug({ backends: allBackends(config).length }, 'pool ready');
    const first = started().snapshot(Date.now());
    discovery.start();
    return first;
  },
  applyHealth(observation: HealthObservation) {
    if (started().applyHealth(observation)) publish();
  },
  reportPassive(report: PassiveReport) {
    const ejection = started().reportPassive(report, Date.now());
    if (!ejection) return;
    log?.warn(
      {
        backend: ejection.backend,
        from: 'healthy',
        to: 'unhealthy',
        reason: `passive: ${ejection.failures} consecutive failures (last ${ejection.lastCode})`,
        ejection_ms: ejection.until - Date.now(),
      },
      `backend ${ejection.backend} is unhealthy (ejected after ${ejection.failures} consecutive failures)`,
    );
    emit?.({ type: 'pool.ejected', backend: ejection.backend, until: ejection.until });
    publish();
    scheduleEjectionEnd();
  },
  addBackend(spec) {
    const added = started().add(spec);
    if (added) {
      log?.info({ backend: `${spec.address}:${spec.port}`, weight: spec.weight }, 'backend added');
      publish();
    }
    return added;
  },
  removeBackend(backend) {
    const removed = started().remove(backend);
    if (removed) {
      log?.info({ backend }, 'backend removed');
      publish();
    }
    return removed;
  },
  reconfigure(config) {
    const upstreams = new Set(upstreamGroups(config).map((group) => group.name));
    // What DNS gave stays a member: the names that stay are not resolved again for a reload.
    const kept = discovery?.reconfigure(config) ?? [];
    const wanted = [...allBackends(config), ...kept];
    if (started().reconcile(wanted, passivePolicies(config), Date.now(), upstreams)) publish();
    discovery?.start();
    // The fallback lasts as long as a fresh start may take to find a healthy backend, no longer.
    clearTimeout(retireTimer);
    if (started().hasRetiring) {
      retireTimer = setTimeout(() => {
        if (started().dropRetiring()) publish();
      }, config.proxy.startup_timeout_ms);
    }
  },
  heartbeat: () => ++beats,
  reopenLog: reopenLogFiles,
  snapshot: () => started().snapshot(Date.now()),
  stop() {
    discovery?.stop();
    clearTimeout(ejectionTimer);
    clearTimeout(retireTimer);
    log?.flush();
    return Promise.resolve();
  },
};

exposeActor(api);
