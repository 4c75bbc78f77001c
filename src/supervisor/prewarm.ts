/**
 * Worker threads booted ahead of the supervisor (start-up time, issue #15).
 * A worker thread spends ~100 ms of CPU in Node's bootstrap and its actor's
 * imports before it can answer; the main thread spends about as long
 * loading the supervisor and the lifecycle machine. The command line boots
 * the pool, health-checker and listener threads as soon as the config is
 * loaded, so both happen at once; the supervisor later adopts each thread
 * (`takePrewarmed`) instead of spawning it. A thread nobody adopts (a run
 * that fails before its actors start) is unref'd and never keeps the
 * process alive.
 */
import type { Worker } from 'node:worker_threads';
import type { ActorKind } from '../protocol.ts';
import { bootThread } from './thread-boot.ts';
import { listenerThreadCount } from './workers.ts';

interface Prewarmed {
  worker: Worker;
  /** Set when the thread threw or exited before it was adopted: it is not handed out then. */
  dead: boolean;
  markDead: () => void;
}

const waiting = new Map<string, Prewarmed>();
const keyOf = (kind: ActorKind, id: number) => `${kind}:${id}`;

/** Boots the threads a proxy with `workers` listener threads starts with (one pool, one health checker). */
export function prewarmThreads(workers: number): void {
  const threads: [ActorKind, number][] = [
    ['pool', 0],
    ['health-checker', 0],
    ...Array.from({ length: listenerThreadCount(workers) }, (_, id): [ActorKind, number] => ['listener', id]),
  ];
  for (const [kind, id] of threads) {
    const worker = bootThread(kind, id);
    worker.unref();
    const entry: Prewarmed = { worker, dead: false, markDead: () => (entry.dead = true) };
    // Without a listener, an 'error' before adoption would be thrown in the main thread.
    worker.once('error', entry.markDead).once('exit', entry.markDead);
    waiting.set(keyOf(kind, id), entry);
  }
}

/**
 * The booted thread for `kind`/`id`, once (a restart boots a new one); none if
 * there is none or it already died (the caller boots a fresh one, whose failure
 * is then reported as usual).
 */
export function takePrewarmed(kind: ActorKind, id: number): Worker | undefined {
  const key = keyOf(kind, id);
  const entry = waiting.get(key);
  if (!entry) return undefined;
  waiting.delete(key);
  entry.worker.off('error', entry.markDead).off('exit', entry.markDead);
  if (entry.dead) return undefined;
  entry.worker.ref();
  return entry.worker;
}
