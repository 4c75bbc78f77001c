/**
 * Runs probe rounds over every backend: the first at once (startup must not
 * wait a whole interval), then one every `interval_ms`. Probes of a round run
 * in parallel; the next round is scheduled after the slowest one settles, so
 * rounds never overlap.
 */
import type { Config } from '../config/schema.ts';
import { backendId, type HealthObservation } from '../protocol.ts';
import { initialTally, observeHealth, type HealthTally } from './hysteresis.ts';
import { httpProbe, tcpProbe, type ProbeResult } from './probe.ts';

export type FlipListener = (observation: HealthObservation, from: boolean) => void;

export class HealthChecker {
  #config: Config;
  #onFlip: FlipListener;
  #tallies = new Map<string, HealthTally>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(config: Config, onFlip: FlipListener) {
    this.#config = config;
    this.#onFlip = onFlip;
  }

  start(): void {
    void this.#round();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  async #round(): Promise<void> {
    const check = this.#config.health_check;
    await Promise.all(
      this.#config.backends.map(async (backend) => {
        const result: ProbeResult =
          check.type === 'tcp'
            ? await tcpProbe(backend, check.timeout_ms)
            : await httpProbe(backend, check.path, check.timeout_ms);
        if (!this.#stopped) this.#observe(backendId(backend), result);
      }),
    );
    if (!this.#stopped) this.#timer = setTimeout(() => void this.#round(), check.interval_ms);
  }

  #observe(id: string, result: ProbeResult): void {
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
