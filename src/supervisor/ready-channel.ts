/**
 * A parent that starts sluice and waits until it is healthy: the `-d` parent
 * and the old process of a hot restart. The child reports once, over the IPC
 * channel, then the channel is closed so neither process holds the other.
 */
import type { ChildProcess } from 'node:child_process';
import { unsetEnv } from './environment.ts';

/** Set in the child's environment when its parent waits for the report. */
export const REPORT_READY_ENV = 'SLUICE_REPORT_READY';

type ReadyMessage = { type: 'ready'; pid: number } | { type: 'failed'; message: string };

export type ChildOutcome = { ok: true; pid: number } | { ok: false; message: string };

/** Resolves on the child's report, its exit, or after `timeoutMs` (then the child is killed). */
export function waitForReady(child: ChildProcess, timeoutMs?: number): Promise<ChildOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (outcome: ChildOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.off('exit', onExit);
      if (child.connected) child.disconnect();
      child.unref();
      resolve(outcome);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      settle({ ok: false, message: `it exited (${signal ?? `code ${code}`}) before it was healthy` });
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill('SIGKILL');
            settle({ ok: false, message: `it was not healthy within ${timeoutMs} ms (killed)` });
          }, timeoutMs);
    child.on('message', (message: ReadyMessage) => {
      settle(message.type === 'ready' ? { ok: true, pid: message.pid } : { ok: false, message: message.message });
    });
    child.once('exit', onExit);
  });
}

/** In the child: what it tells the parent that waits for it, once. */
export interface WaitingParent {
  /** Healthy (the lifecycle's `reportReady`). */
  ready(): void;
  /** It could not start, or failed before it was healthy. */
  failed(message: string): void;
}

/** The parent waiting for this process, or undefined when none waits. */
export function waitingParent(): WaitingParent | undefined {
  const toParent = process.send?.bind(process);
  if (process.env[REPORT_READY_ENV] !== '1' || !toParent) return undefined;
  unsetEnv(process.env, REPORT_READY_ENV);
  const send = (message: ReadyMessage) => {
    if (!process.connected) return;
    toParent(message);
    // The parent leaves (or drains) after one message; the channel must not tie the processes.
    process.disconnect();
  };
  return {
    ready: () => send({ type: 'ready', pid: process.pid }),
    failed: (message) => send({ type: 'failed', message }),
  };
}
