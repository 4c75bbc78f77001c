/**
 * When to restart a failed actor thread, and when to stop trying: at most
 * `maxRestarts` in any `windowMs`, each after an exponential backoff
 * (100 ms, 200 ms, 400 ms … capped). Pure: time comes in as `now`.
 */
export interface RestartDecision {
  restart: boolean;
  /** Wait this long before restarting. */
  delayMs: number;
  /** Restarts within the window, this one included. */
  recent: number;
}

export interface RestartLimits {
  maxRestarts: number;
  windowMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const defaultRestartLimits: RestartLimits = {
  maxRestarts: 5,
  windowMs: 60_000,
  baseDelayMs: 100,
  maxDelayMs: 5_000,
};

export class RestartPolicy {
  readonly #limits: RestartLimits;
  #restarts: number[] = [];
  total = 0;

  constructor(limits: RestartLimits = defaultRestartLimits) {
    this.#limits = limits;
  }

  onFailure(now: number): RestartDecision {
    this.#restarts = this.#restarts.filter((at) => now - at < this.#limits.windowMs);
    if (this.#restarts.length >= this.#limits.maxRestarts)
      return { restart: false, delayMs: 0, recent: this.#restarts.length };
    const delayMs = Math.min(this.#limits.maxDelayMs, this.#limits.baseDelayMs * 2 ** this.#restarts.length);
    this.#restarts.push(now);
    this.total++;
    return { restart: true, delayMs, recent: this.#restarts.length };
  }
}
