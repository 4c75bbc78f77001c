/**
 * Time as the timers that must be tested without waiting see it: the
 * process's timers in production, xstate's SimulatedClock in the tests
 * (it has these three methods, and `increment(ms)` to move on).
 */
export interface Clock {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
  now(): number;
}

/** Timers that do not keep the process alive: a proxy stops when its lifecycle says so. */
export const systemClock: Clock = {
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: (id) => clearTimeout(id as NodeJS.Timeout),
  now: () => Date.now(),
};
