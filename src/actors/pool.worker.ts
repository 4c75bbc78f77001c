/**
 * The pool actor's thread: owns the backend set (addresses, weights, health)
 * and publishes a snapshot to the supervisor, which hands it to every
 * listener, whenever routing changes.
 */
import { createLogger, type Logger } from '../log.ts';
import { BackendPool } from '../pool/backend-pool.ts';
import type { ActorInit, HealthObservation, PoolApi, PoolEvent } from '../protocol.ts';
import { exposeActor } from './expose.ts';
import { runTestHooks } from './test-hooks.ts';

let pool: BackendPool | undefined;
let publish: ((event: PoolEvent) => void) | undefined;
let log: Logger | undefined;

const api: PoolApi = {
  async start({ config, log: logOptions }: ActorInit, onEvent: (event: PoolEvent) => void) {
    await runTestHooks('pool', 0);
    log = createLogger(logOptions, { actor: 'pool' });
    pool = new BackendPool(config.backends);
    publish = onEvent;
    log.debug({ backends: config.backends.length }, 'pool ready');
    publish({ type: 'pool.published', snapshot: pool.snapshot() });
  },
  applyHealth(observation: HealthObservation) {
    if (pool?.applyHealth(observation)) publish?.({ type: 'pool.published', snapshot: pool.snapshot() });
  },
  snapshot() {
    if (!pool) throw new Error('pool actor not started');
    return pool.snapshot();
  },
  async stop() {
    log?.flush();
  },
};

exposeActor(api);
