/**
 * The backend set the pool actor owns: membership, weights and health.
 * Every change that matters to routing bumps the version of the snapshot
 * the actor publishes to the listeners.
 */
import { backendId, type BackendSpec, type BackendState, type HealthObservation, type PoolSnapshot } from '../protocol.ts';

export class BackendPool {
  #backends = new Map<string, BackendState>();
  #version = 0;

  constructor(specs: readonly BackendSpec[]) {
    // New backends start unhealthy: nothing is routed to them before their first passing check.
    for (const spec of specs) {
      const id = backendId(spec);
      this.#backends.set(id, { id, address: spec.address, port: spec.port, weight: spec.weight, healthy: false });
    }
  }

  /** Returns true when the observation changed the backend's health. */
  applyHealth(observation: HealthObservation): boolean {
    const backend = this.#backends.get(observation.backend);
    if (!backend || backend.healthy === observation.healthy) return false;
    backend.healthy = observation.healthy;
    this.#version++;
    return true;
  }

  snapshot(): PoolSnapshot {
    return { version: this.#version, backends: [...this.#backends.values()].map((b) => ({ ...b })) };
  }
}

export const healthyCount = (snapshot: PoolSnapshot): number =>
  snapshot.backends.filter((b) => b.healthy).length;
