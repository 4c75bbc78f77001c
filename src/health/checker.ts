/**
 * Runs probe rounds over every backend, each upstream with its own
 * settings and interval: the first at once (startup must not
 * wait a whole interval), then one every `interval_ms` ±10% jitter (so many
 * proxies restarted together do not probe in lockstep). Probes of a round
 * run in parallel; the next round is scheduled after the slowest settles,
 * so rounds never overlap.
 */
import type { Config, HealthCheck } from '../config/schema.ts';
import { allBackends, discoveredGroups, upstreamGroups } from '../config/upstream-groups.ts';
import {
  DEFAULT_UPSTREAM,
  backendId,
  type BackendId,
  type BackendSpec,
  type HealthObservation,
  type ProbeReport,
} from '../protocol.ts';
import { statusMatcher } from './expected-status.ts';
import { initialTally, observeHealth, type HealthTally } from './hysteresis.ts';
import { httpProbe, tcpProbe, type ProbeResult } from './probe.ts';
import { forgetContexts } from '../tls/upstream-tls.ts';

export type FlipListener = (observation: HealthObservation, from: boolean) => void;

/** `interval` ±10%, uniformly. */
export const jittered = (interval: number, random: () => number = Math.random): number =>
  Math.round(interval * (0.9 + 0.2 * random()));

/** One upstream's probe settings. */
interface GroupCheck {
  check: HealthCheck;
  accepts: (status: number) => boolean;
}

export class HealthChecker {
  readonly #onFlip: FlipListener;
  readonly #onProbe: (backend: BackendId, passed: boolean) => void;
  readonly #tallies = new Map<BackendId, HealthTally>();
  /** Each backend's latest probe result: why it is (un)healthy, e.g. for a startup timeout's report. */
  readonly #lastResults = new Map<BackendId, ProbeResult>();
  /** Each upstream probes with its own settings, on its own interval. */
  #groups = new Map<string, GroupCheck>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** Groups whose round is in flight. */
  readonly #running = new Set<string>();
  readonly #backends = new Map<BackendId, BackendSpec>();
  /** Backends added one by one (DNS answers, the admin API) rather than listed in the config. */
  readonly #added = new Set<BackendId>();
  #started = false;
  #stopped = false;

  constructor(config: Config, onFlip: FlipListener, onProbe: ProbeListener = countNoProbes) {
    this.#onFlip = onFlip;
    this.#onProbe = onProbe;
    this.#groups = groupChecks(config);
    for (const backend of allBackends(config)) this.#backends.set(backendId(backend), backend);
  }

  /** A reload: new probe settings and backends from the next round on; kept backends keep their tallies. */
  reconfigure(config: Config): void {
    // A reload may have replaced a CA file: TLS probes read it again.
    forgetContexts();
    this.#groups = groupChecks(config);
    const wanted = allBackends(config);
    const ids = new Set(wanted.map((b) => backendId(b)));
    // What DNS gave an upstream that still resolves from DNS is no config's to drop: the pool says when it goes.
    const discovered = discoveredGroups(config);
    const fromDns = (id: BackendId) =>
      this.#added.has(id) && discovered.has(this.#backends.get(id)?.upstream ?? DEFAULT_UPSTREAM);
    for (const id of [...this.#backends.keys()]) if (!ids.has(id) && !fromDns(id)) this.removeBackend(id);
    for (const backend of wanted) {
      const known = this.#backends.get(backendId(backend));
      if (!known) this.addBackend(backend);
      else this.#backends.set(backendId(backend), backend);
    }
    for (const [name, timer] of this.#timers) {
      if (this.#groups.has(name)) continue;
      clearTimeout(timer);
      this.#timers.delete(name);
    }
    // A group whose round is running schedules its next one when it ends: starting another now would overlap it.
    if (this.#started)
      for (const name of this.#groups.keys())
        if (!this.#timers.has(name) && !this.#running.has(name)) void this.#round(name);
  }

  /** Probed from the next round on; a round never waits for it. */
  addBackend(spec: BackendSpec): void {
    this.#backends.set(backendId(spec), spec);
    this.#added.add(backendId(spec));
    // Probe it at once rather than a whole interval later: it is unroutable until it passes.
    void this.#probe(spec).then((result) => {
      if (!this.#stopped && this.#backends.has(backendId(spec))) this.#observe(backendId(spec), result);
    });
  }

  removeBackend(id: BackendId): void {
    this.#backends.delete(id);
    this.#added.delete(id);
    this.#tallies.delete(id);
    this.#lastResults.delete(id);
  }

  /** Every backend with its latest probe result (`reason` null: no probe has finished yet). */
  lastProbes(): ProbeReport[] {
    return [...this.#backends].map(([id, backend]) => {
      const last = this.#lastResults.get(id);
      const upstream = backend.upstream ?? DEFAULT_UPSTREAM;
      return { backend: id, upstream, passed: last?.passed ?? false, reason: last?.reason ?? null };
    });
  }

  start(): void {
    this.#started = true;
    for (const name of this.#groups.keys()) void this.#round(name);
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  /** A restarted checker carries on from what the pool knows, instead of from "all unhealthy". */
  assumeHealthy(ids: readonly BackendId[]): void {
    for (const id of ids) this.#tallies.set(id, { healthy: true, streak: 0 });
  }

  /** Passive health ejected it: it must pass `healthy_threshold` checks again. */
  markUnhealthy(id: BackendId): void {
    this.#tallies.set(id, initialTally);
  }

  #groupOf(backend: BackendSpec): GroupCheck {
    const group = this.#groups.get(backend.upstream ?? DEFAULT_UPSTREAM) ?? this.#groups.get(DEFAULT_UPSTREAM);
    // upstreamGroups() always yields the default group, so this is never reached.
    if (group === undefined) throw new Error(`no health check for ${backendId(backend)}`);
    return group;
  }

  #probe(backend: BackendSpec): Promise<ProbeResult> {
    const { check, accepts } = this.#groupOf(backend);
    return check.type === 'tcp'
      ? tcpProbe(backend, check.timeout_ms)
      : httpProbe(backend, { path: check.path, timeoutMs: check.timeout_ms, host: check.host, accepts });
  }

  async #round(group: string): Promise<void> {
    this.#timers.delete(group);
    this.#running.add(group);
    const members = [...this.#backends].filter(([, b]) => (b.upstream ?? DEFAULT_UPSTREAM) === group);
    await Promise.all(
      members.map(async ([id, backend]) => {
        const result = await this.#probe(backend);
        // A backend removed while its probe ran is not reported.
        if (!this.#stopped && this.#backends.has(id)) this.#observe(id, result);
      }),
    );
    this.#running.delete(group);
    const settings = this.#groups.get(group);
    if (this.#stopped || !settings || this.#timers.has(group)) return;
    this.#timers.set(
      group,
      setTimeout(() => void this.#round(group), jittered(settings.check.interval_ms)),
    );
  }

  #observe(id: BackendId, result: ProbeResult): void {
    this.#lastResults.set(id, result);
    this.#onProbe(id, result.passed);
    const backend = this.#backends.get(id);
    if (!backend) return;
    const { check } = this.#groupOf(backend);
    const before = this.#tallies.get(id) ?? initialTally;
    const { tally, flipped } = observeHealth(before, result.passed, {
      healthyThreshold: check.healthy_threshold,
      unhealthyThreshold: check.unhealthy_threshold,
    });
    this.#tallies.set(id, tally);
    if (flipped) this.#onFlip({ backend: id, healthy: tally.healthy, reason: result.reason }, before.healthy);
  }
}

type ProbeListener = (backend: BackendId, passed: boolean) => void;

function countNoProbes(): void {
  // The default for a checker whose owner keeps no probe metrics.
}

function groupChecks(config: Config): Map<string, GroupCheck> {
  return new Map(
    upstreamGroups(config).map((group) => [
      group.name,
      { check: group.health_check, accepts: statusMatcher(group.health_check.expected_status) },
    ]),
  );
}
