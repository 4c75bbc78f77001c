/**
 * Records SIGTERM/SIGINT from the first moment of the process, before the
 * rest of sluice has loaded (a few hundred milliseconds of imports). Without
 * it, a stop asked for in that window would kill the process outright
 * instead of ending it with exit 0 as a stop during `starting` should.
 */
export class EarlySignals {
  readonly #seen: NodeJS.Signals[] = [];
  readonly #record = (signal: NodeJS.Signals) => void this.#seen.push(signal);

  constructor() {
    process.on('SIGTERM', this.#record);
    process.on('SIGINT', this.#record);
  }

  /** Stop recording (the supervisor's handlers take over) and return what came in. */
  take(): NodeJS.Signals[] {
    process.off('SIGTERM', this.#record);
    process.off('SIGINT', this.#record);
    return this.#seen.splice(0);
  }
}
