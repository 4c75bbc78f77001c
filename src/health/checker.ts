/**
 * Runs probe rounds over every backend: the first at once (startup must not
 * wait a whole interval), then one every `interval_ms` ±10% jitter (so many
 * proxies restarted together do not probe in lockstep). Probes of a round
 * run in parallel; the next round is scheduled after the slowest settles,
 * so rounds never overlap.
 */
import type { Config } from '../config/schema.ts';
import { backendId, type BackendId, type BackendSpec, type HealthObservation } from '../protocol.ts';
import { statusMatcher } from './expected-status.ts';
import { initialTally, observeHealth, type HealthTally } from './hysteresis.ts';
import { httpProbe, tcpProbe, type ProbeResult } from './probe.ts';

export type FlipListener = (observation: HealthObservation, from: boolean) => void;

/** `interval` ±10%, uniformly. */
export const jittered = (interval: number, random: () => number = Math.random): number =>
  Math.round(interval * (0.9 + 0.2 * random()));

export class HealthChecker {
  #config: Config;
  readonly #onFlip: FlipListener;
  readonly #onProbe: (backend: BackendId, passed: boolean) => void;
  readonly #tallies = new Map<BackendId, HealthTally>();
  #accepts: (status: number) => boolean;
  readonly #backends = new Map<BackendId, BackendSpec>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(config: Config, onFlip: FlipListener, onProbe: (backend: BackendId, passed: boolean) => void = () => {}) {
    this.#config = config;
    this.#onFlip = onFlip;
    this.#onProbe = onProbe;
    this.#accepts = statusMatcher(config.health_check.expected_status);
    for (const backend of config.backends) this.#backends.set(backendId(backend), backend);
  }

  /** A reload: new probe settings and backends from the next round on; kept backends keep their tallies. */
  reconfigure(config: Config): void {
    this.#config = config;
    this.#accepts = statusMatcher(config.health_check.expected_status);
    const wanted = new Set(config.backends.map((b) => backendId(b)));
    for (const id of [...this.#backends.keys()]) if (!wanted.has(id)) this.removeBackend(id);
    for (const backend of config.backends) if (!this.#backends.has(backendId(backend))) this.addBackend(backend);
  }

  /** Probed from the next round on; a round never waits for it. */
  addBackend(spec: BackendSpec): void {
    this.#backends.set(backendId(spec), spec);
    // Probe it at once rather than a whole interval later: it is unroutable until it passes.
    void this.#probe(spec).then((result) => {
      if (!this.#stopped && this.#backends.has(backendId(spec))) this.#observe(backendId(spec), result);
    });
  }

  removeBackend(id: BackendId): void {
    this.#backends.delete(id);
    this.#tallies.delete(id);
  }

  start(): void {
    void this.#round();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** A restarted checker carries on from what the pool knows, instead of from "all unhealthy". */
  assumeHealthy(ids: readonly BackendId[]): void {
    for (const id of ids) this.#tallies.set(id, { healthy: true, streak: 0 });
  }

  /** Passive health ejected it: it must pass `healthy_threshold` checks again. */
  markUnhealthy(id: BackendId): void {
    this.#tallies.set(id, initialTally);
  }

  #probe(backend: { address: string; port: number }): Promise<ProbeResult> {
    const check = this.#config.health_check;
    return check.type === 'tcp'
      ? tcpProbe(backend, check.timeout_ms)
      : httpProbe(backend, { path: check.path, timeoutMs: check.timeout_ms, host: check.host, accepts: this.#accepts });
  }

  async #round(): Promise<void> {
    await Promise.all(
      [...this.#backends].map(async ([id, backend]) => {
        const result = await this.#probe(backend);
        // A backend removed while its probe ran is not reported.
        if (!this.#stopped && this.#backends.has(id)) this.#observe(id, result);
      }),
    );
    if (!this.#stopped) this.#timer = setTimeout(() => void this.#round(), jittered(this.#config.health_check.interval_ms));
  }

  #observe(id: BackendId, result: ProbeResult): void {
    this.#onProbe(id, result.passed);
    const check = this.#config.health_check;
    const before = this.#tallies.get(id) ?? initialTally;
    const { tally, flipped } = observeHealth(before, result.passed, {
      healthyThreshold: check.healthy_threshold,
      unhealthyThreshold: check.unhealthy_threshold,
    });
    this.#tallies.set(id, tally);
    if (flipped) this.#onFlip({ backend: id, healthy: tally.healthy, reason: result.reason }, before.healthy);
  }
}
