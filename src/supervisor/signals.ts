/**
 * Signals reach only the main thread. SIGTERM and SIGINT ask for a stop;
 * the lifecycle machine decides what a stop means in its current state.
 */
export interface SignalOptions {
  /**
   * A repeat of the same signal within this window counts once. Under
   * `npm start`, Ctrl-C reaches both npm and sluice, and npm forwards its own
   * copy a moment later: without this, one Ctrl-C would be a "second signal".
   */
  duplicateWindowMs: number;
}

export function onStopSignals(handler: (signal: NodeJS.Signals) => void, options: SignalOptions): () => void {
  let last: { signal: string; at: number } | undefined;
  const listener = (signal: NodeJS.Signals) => {
    const now = Date.now();
    if (last?.signal === signal && now - last.at < options.duplicateWindowMs) return;
    last = { signal, at: now };
    handler(signal);
  };
  process.on('SIGTERM', listener);
  process.on('SIGINT', listener);
  return () => {
    process.off('SIGTERM', listener);
    process.off('SIGINT', listener);
  };
}

/**
 * Calls `onOrphaned` once if this process's parent goes away (it is then
 * re-parented and `process.ppid` changes). Used under npm, so the proxy
 * never outlives the `npm start` that launched it.
 */
export function onParentExit(onOrphaned: () => void, intervalMs = 500): () => void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onOrphaned();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** True when npm (or another package manager's run-script) started this process. */
export const startedByPackageManager = (): boolean => process.env['npm_lifecycle_event'] !== undefined;

export function onSignal(signal: NodeJS.Signals, handler: () => void): () => void {
  process.on(signal, handler);
  return () => process.off(signal, handler);
}
