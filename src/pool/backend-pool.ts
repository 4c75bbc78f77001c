/**
 * The backend set the pool actor owns: membership, weights, health from the
 * active checks, ejections from passive health, and each backend's slot in
 * the shared in-flight counters. Every change that matters to routing bumps
 * the version of the snapshot the actor publishes to the listeners.
 *
 * Pure: time comes in as `now` arguments, so ejections are testable without
 * waiting.
 */
import {
  DEFAULT_UPSTREAM,
  backendId,
  type BackendId,
  type BackendSpec,
  type BackendState,
  type HealthObservation,
  type PassiveReport,
  type PoolSnapshot,
} from '../protocol.ts';

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
  /** Removed by a reload, kept as a fallback until a backend of the new set is selectable. */
  retiring: boolean;
}

/** One policy for every backend, or one per upstream (absent from the map: no passive health). */
export type PassivePolicies = PassivePolicy | null | ReadonlyMap<string, PassivePolicy | null>;

const isPerUpstream = (passive: PassivePolicies): passive is ReadonlyMap<string, PassivePolicy | null> =>
  passive instanceof Map;

const upstreamOf = (entry: Entry): string => entry.spec.upstream ?? DEFAULT_UPSTREAM;

export interface Ejection {
  backend: BackendId;
  until: number;
  failures: number;
  lastCode: string;
}

export class BackendPool {
  readonly #entries = new Map<BackendId, Entry>();
  #passive: PassivePolicies;
  #version = 0;
  #nextSlot = 0;

  /** `version`: where the snapshot versions start (a restarted pool continues its predecessor's count). */
  constructor(specs: readonly BackendSpec[], passive: PassivePolicies = null, version = 0) {
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
    this.#entries.set(id, { spec, id, slot, healthy: false, ejectedUntil: 0, failures: 0, retiring: false });
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
   * config. Make before break: a removed backend that still serves is kept
   * as a fallback (`retiring`), chosen only while no backend of the new set
   * is selectable, and dropped as soon as one is — so a reload that replaces
   * the whole set never leaves a moment without a backend. Returns true when
   * anything routing depends on changed.
   */
  reconcile(
    specs: readonly BackendSpec[],
    passive: PassivePolicies,
    now: number,
    upstreams?: ReadonlySet<string>,
  ): boolean {
    this.#passive = passive;
    const wanted = new Map(specs.map((spec) => [backendId(spec), spec]));
    const served = new Set(specs.map((spec) => spec.upstream ?? DEFAULT_UPSTREAM));
    let changed = false;
    for (const entry of [...this.#entries.values()]) {
      if (wanted.has(entry.id) || entry.retiring) continue;
      const upstream = upstreamOf(entry);
      // An upstream the new config still has but emptied is what the operator asked for: nothing to wait for.
      // One it no longer has may still get requests from the listeners' old route table until the new one
      // is in use (router.ts): its backends retire like replaced ones.
      const emptied =
        upstreams !== undefined ? upstreams.has(upstream) && !served.has(upstream) : !served.has(upstream);
      if (!emptied && isSelectable(entry, now)) {
        entry.retiring = true;
        this.#version++;
        changed = true;
      } else {
        changed = this.remove(entry.id) || changed;
      }
    }
    for (const [id, spec] of wanted) {
      const entry = this.#entries.get(id);
      if (!entry) {
        changed = this.add(spec) || changed;
      } else if (
        entry.retiring ||
        entry.spec.weight !== spec.weight ||
        entry.spec.enabled !== spec.enabled ||
        entry.spec.priority !== spec.priority ||
        !sameTls(entry.spec.tls, spec.tls) ||
        upstreamOf(entry) !== (spec.upstream ?? DEFAULT_UPSTREAM)
      ) {
        entry.spec = spec;
        entry.retiring = false;
        this.#version++;
        changed = true;
      }
    }
    return this.#dropReplaced(now) || changed;
  }

  /**
   * DNS gave `upstream` a new set: new backends start unhealthy, removed ones
   * go at once (the listeners finish their requests and close their idle
   * connections), kept ones take the record's weight and priority. Unlike a
   * reload there is no fallback: a name that stops listing an address says
   * that address is going away. An address that already belongs to another
   * upstream stays there (`skipped`): a backend has one upstream.
   */
  replaceDiscovered(
    upstream: string,
    specs: readonly BackendSpec[],
  ): { added: BackendSpec[]; removed: BackendId[]; skipped: BackendId[]; changed: boolean } {
    const before = this.#version;
    const wanted = new Map(specs.map((spec) => [backendId(spec), { ...spec, upstream }]));
    const added: BackendSpec[] = [];
    const removed: BackendId[] = [];
    const skipped: BackendId[] = [];
    for (const entry of [...this.#entries.values()]) {
      if (upstreamOf(entry) !== upstream || wanted.has(entry.id)) continue;
      this.remove(entry.id);
      removed.push(entry.id);
    }
    for (const [id, spec] of wanted) {
      const entry = this.#entries.get(id);
      if (!entry) {
        this.add(spec);
        added.push(spec);
      } else if (upstreamOf(entry) !== upstream) {
        skipped.push(id);
      } else if (
        entry.spec.weight !== spec.weight ||
        entry.spec.priority !== spec.priority ||
        !sameTls(entry.spec.tls, spec.tls) ||
        entry.retiring
      ) {
        entry.spec = spec;
        entry.retiring = false;
        this.#version++;
      }
    }
    return { added, removed, skipped, changed: this.#version !== before };
  }

  /** Ends the fallback of a reload: every retiring backend goes. Returns true when any did. */
  dropRetiring(): boolean {
    let changed = false;
    for (const entry of [...this.#entries.values()]) if (entry.retiring) changed = this.remove(entry.id) || changed;
    return changed;
  }

  get hasRetiring(): boolean {
    return [...this.#entries.values()].some((e) => e.retiring);
  }

  /** Upstreams with a selectable backend that is not retiring: their retiring backends are replaced. */
  #served(now: number): Set<string> {
    const served = new Set<string>();
    for (const entry of this.#entries.values())
      if (!entry.retiring && isSelectable(entry, now)) served.add(upstreamOf(entry));
    return served;
  }

  /** Retiring backends go once a backend of the current set of their upstream is selectable. */
  #dropReplaced(now: number): boolean {
    const served = this.#served(now);
    let changed = false;
    for (const entry of [...this.#entries.values()]) {
      if (entry.retiring && served.has(upstreamOf(entry))) changed = this.remove(entry.id) || changed;
    }
    return changed;
  }

  #policyFor(entry: Entry): PassivePolicy | null {
    const passive = this.#passive;
    if (!isPerUpstream(passive)) return passive;
    return passive.get(upstreamOf(entry)) ?? null;
  }

  has(id: BackendId): boolean {
    return this.#entries.has(id);
  }

  /** Returns true when the observation changed the backend's health (or ended a reload's fallback). */
  applyHealth(observation: HealthObservation, now = Date.now()): boolean {
    const entry = this.#entries.get(observation.backend);
    if (!entry || entry.healthy === observation.healthy) return false;
    entry.healthy = observation.healthy;
    if (observation.healthy) entry.failures = 0;
    this.#version++;
    this.#dropReplaced(now);
    return true;
  }

  /** Passive health: returns the ejection when this report ejects the backend. */
  reportPassive(report: PassiveReport, now: number): Ejection | undefined {
    const entry = this.#entries.get(report.backend);
    const policy = entry && this.#policyFor(entry);
    if (!entry || !policy) return undefined;
    if (report.type === 'recovered') {
      entry.failures = 0;
      return undefined;
    }
    entry.failures++;
    if (entry.failures < policy.failures || entry.ejectedUntil > now) return undefined;
    const failures = entry.failures;
    entry.failures = 0;
    entry.ejectedUntil = now + policy.ejectionMs;
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
    return this.#dropReplaced(now) || changed;
  }

  /** When the next ejection ends, if any is running. */
  nextEjectionEnd(): number | undefined {
    const ends = [...this.#entries.values()].map((e) => e.ejectedUntil).filter((t) => t > 0);
    return ends.length > 0 ? Math.min(...ends) : undefined;
  }

  /** Per upstream, the lowest SRV priority with a selectable backend: the only one chosen from. */
  #activePriorities(now: number): Map<string, number> {
    const active = new Map<string, number>();
    for (const entry of this.#entries.values()) {
      const priority = entry.spec.priority;
      if (priority === undefined || entry.retiring || !isSelectable(entry, now)) continue;
      const upstream = upstreamOf(entry);
      if (priority < (active.get(upstream) ?? Infinity)) active.set(upstream, priority);
    }
    return active;
  }

  snapshot(now: number): PoolSnapshot {
    const entries = [...this.#entries.values()];
    const served = this.#served(now);
    const priorities = this.#activePriorities(now);
    const inActivePriority = (entry: Entry) =>
      entry.spec.priority === undefined || priorities.get(upstreamOf(entry)) === entry.spec.priority;
    const backends: BackendState[] = entries.map((entry) => ({
      ...entry.spec,
      upstream: entry.spec.upstream ?? DEFAULT_UPSTREAM,
      id: entry.id,
      healthy: entry.healthy,
      ejected: entry.ejectedUntil > now,
      selectable:
        isSelectable(entry, now) && (!entry.retiring || !served.has(upstreamOf(entry))) && inActivePriority(entry),
      slot: entry.slot,
      ...(entry.retiring && { retiring: true }),
    }));
    return { version: this.#version, backends };
  }
}

/** A changed `tls` reaches the listeners in the next snapshot: their idle connections of the old one are not reused. */
function sameTls(a: BackendSpec['tls'], b: BackendSpec['tls']): boolean {
  if (!a || !b) return !a && !b;
  return a.servername === b.servername && a.ca === b.ca && a.verify === b.verify;
}

const isSelectable = (entry: Entry, now: number): boolean =>
  entry.spec.enabled && entry.healthy && entry.ejectedUntil <= now;

/** Backends the balancers may choose (enabled, healthy, not ejected). */
export const selectableCount = (snapshot: PoolSnapshot): number => snapshot.backends.filter((b) => b.selectable).length;

/** The most backends one process tracks in-flight counters for. */
export const MAX_BACKEND_SLOTS = 4096;
