/**
 * Health hysteresis as a pure function (after Pingora's observe_health): a
 * backend flips after `healthyThreshold` consecutive passes or
 * `unhealthyThreshold` consecutive failures; an observation that agrees with
 * the current state resets the streak.
 */
export interface HealthTally {
  healthy: boolean;
  /** Consecutive observations that disagree with `healthy`. */
  streak: number;
}

export interface Thresholds {
  healthyThreshold: number;
  unhealthyThreshold: number;
}

/** Backends start unhealthy until their first passing streak. */
export const initialTally: HealthTally = { healthy: false, streak: 0 };

export function observeHealth(
  tally: HealthTally,
  passed: boolean,
  thresholds: Thresholds,
): { tally: HealthTally; flipped: boolean } {
  if (passed === tally.healthy) return { tally: { healthy: tally.healthy, streak: 0 }, flipped: false };
  const streak = tally.streak + 1;
  const needed = passed ? thresholds.healthyThreshold : thresholds.unhealthyThreshold;
  if (streak >= needed) return { tally: { healthy: passed, streak: 0 }, flipped: true };
  return { tally: { healthy: tally.healthy, streak }, flipped: false };
}
