/**
 * The backend set the pool actor owns: membership, weights, health from the
 * active checks, ejections from passive health, and each backend's slot in
 * the shared in-flight counters. Every change that matters to routing bumps
 * the version of the snapshot the actor publishes to the listeners.
 *
 * Pure: time comes in as `now` arguments, so ejections are testable without
 * waiting.
 */
import { backendId, type BackendId, type BackendSpec, type BackendState, type HealthObservation, type PassiveReport, type PoolSnapshot } from '../protocol.ts';

export interface PassivePolicy {
  failures: number;
  ejectionMs: number;
}

interface Entry {
  spec: BackendSpec;
  id: BackendId;
  slot: number;
  healthy: boolean;
  ejectedUntil: number;
  /** Consecutive failures reported by listeners since the last reported success. */
  failures: number;
}

export interface Ejection {
  backend: BackendId;
  until: number;
  failures: number;
  lastCode: string;
}

export class BackendPool {
  readonly #entries = new Map<BackendId, Entry>();
  #passive: PassivePolicy | null;
  #version = 0;
  #nextSlot = 0;

  /** `version`: where the snapshot versions start (a restarted pool continues its predecessor's count). */
  constructor(specs: readonly BackendSpec[], passive: PassivePolicy | null = null, version = 0) {
    this.#passive = passive;
    this.#version = version;
    for (const spec of specs) this.#add(spec);
  }

  #freeSlots: number[] = [];

  #add(spec: BackendSpec): boolean {
    const id = backendId(spec);
    if (this.#entries.has(id)) return false;
    const slot = this.#freeSlots.shift() ?? this.#nextSlot++;
    if (slot >= MAX_BACKEND_SLOTS) throw new RangeError(`at most ${MAX_BACKEND_SLOTS} backends`);
    // New backends start unhealthy: nothing is routed to them before their first passing check.
    this.#entries.set(id, { spec, id, slot, healthy: false, ejectedUntil: 0, failures: 0 });
    return true;
  }

  /** Adds a backend (unhealthy until its first passing check); false if it is already there. */
  add(spec: BackendSpec): boolean {
    if (!this.#add(spec)) return false;
    this.#version++;
    return true;
  }

  /**
   * Removes a backend; false if unknown. Its slot is reused only by a later
   * backend: listeners finish the requests already on it.
   */
  remove(id: BackendId): boolean {
    const entry = this.#entries.get(id);
    if (!entry) return false;
    this.#entries.delete(id);
    this.#freeSlots.push(entry.slot);
    this.#version++;
    return true;
  }

  /**
   * A reload: the set becomes `specs`. Backends that stay keep their health
   * and slot; new ones start unhealthy; weight and `enabled` follow the new
   * config. Returns true when anything routing depends on changed.
   */
  reconcile(specs: readonly BackendSpec[], passive: PassivePolicy | null): boolean {
    this.#passive = passive;
    const wanted = new Map(specs.map((spec) => [backendId(spec), spec]));
    let changed = false;
    for (const id of [...this.#entries.keys()]) if (!wanted.has(id)) changed = this.remove(id) || changed;
    for (const [id, spec] of wanted) {
      const entry = this.#entries.get(id);
      if (!entry) {
        changed = this.add(spec) || changed;
      } else if (entry.spec.weight !== spec.weight || entry.spec.enabled !== spec.enabled) {
        entry.spec = spec;
        this.#version++;
        changed = true;
      }
    }
    return changed;
  }

  has(id: BackendId): boolean {
    return this.#entries.has(id);
  }

  /** Returns true when the observation changed the backend's health. */
  applyHealth(observation: HealthObservation): boolean {
    const entry = this.#entries.get(observation.backend);
    if (!entry || entry.healthy === observation.healthy) return false;
    entry.healthy = observation.healthy;
    if (observation.healthy) entry.failures = 0;
    this.#version++;
    return true;
  }

  /** Passive health: returns the ejection when this report ejects the backend. */
  reportPassive(report: PassiveReport, now: number): Ejection | undefined {
    const entry = this.#entries.get(report.backend);
    if (!entry || !this.#passive) return undefined;
    if (report.type === 'recovered') {
      entry.failures = 0;
      return undefined;
    }
    entry.failures++;
    if (entry.failures < this.#passive.failures || entry.ejectedUntil > now) return undefined;
    const failures = entry.failures;
    entry.failures = 0;
    entry.ejectedUntil = now + this.#passive.ejectionMs;
    // After the ejection the active check decides: it has to pass again first.
    entry.healthy = false;
    this.#version++;
    return { backend: entry.id, until: entry.ejectedUntil, failures, lastCode: report.code };
  }

  /** Ends the ejections that are over; returns true when any ended (routing may change). */
  expireEjections(now: number): boolean {
    let changed = false;
    for (const entry of this.#entries.values()) {
      if (entry.ejectedUntil === 0 || entry.ejectedUntil > now) continue;
      entry.ejectedUntil = 0;
      changed = true;
    }
    if (changed) this.#version++;
    return changed;
  }

  /** When the next ejection ends, if any is running. */
  nextEjectionEnd(): number | undefined {
    const ends = [...this.#entries.values()].map((e) => e.ejectedUntil).filter((t) => t > 0);
    return ends.length > 0 ? Math.min(...ends) : undefined;
  }

  snapshot(now: number): PoolSnapshot {
    const backends: BackendState[] = [...this.#entries.values()].map((entry) => {
      const ejected = entry.ejectedUntil > now;
      return {
        ...entry.spec,
        id: entry.id,
        healthy: entry.healthy,
        ejected,
        selectable: entry.spec.enabled && entry.healthy && !ejected,
        slot: entry.slot,
      };
    });
    return { version: this.#version, backends };
  }
}

/** Backends the balancers may choose (enabled, healthy, not ejected). */
export const selectableCount = (snapshot: PoolSnapshot): number => snapshot.backends.filter((b) => b.selectable).length;

/** The most backends one process tracks in-flight counters for. */
export const MAX_BACKEND_SLOTS = 4096;
