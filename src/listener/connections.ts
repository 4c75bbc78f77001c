/**
 * Client connections of one listener thread: admission against the
 * process-wide `max_connections` (one Int32 in shared memory, updated with
 * Atomics by every listener thread), tracking for drain, and force-close.
 */
import type { Socket } from 'node:net';

const LIVE = 0;
const REJECTED = 1;
export const COUNTER_SLOTS = 2;

export class ConnectionTracker {
  readonly #counter: Int32Array;
  #limit: number;
  readonly #sockets = new Set<Socket>();
  #onEmpty: (() => void) | undefined;

  constructor(shared: SharedArrayBuffer, limit: number) {
    this.#counter = new Int32Array(shared);
    this.#limit = limit;
  }

  /** Returns false (and closes the socket) when the process is at its connection limit. */
  admit(socket: Socket): boolean {
    if (Atomics.add(this.#counter, LIVE, 1) >= this.#limit) {
      Atomics.sub(this.#counter, LIVE, 1);
      Atomics.add(this.#counter, REJECTED, 1);
      socket.destroy();
      return false;
    }
    this.#sockets.add(socket);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      Atomics.sub(this.#counter, LIVE, 1);
      if (this.#sockets.size === 0) this.#onEmpty?.();
    });
    return true;
  }

  set limit(limit: number) {
    this.#limit = limit;
  }

  get size(): number {
    return this.#sockets.size;
  }

  /** Calls `callback` once, as soon as this thread holds no connection (at once if it holds none now). */
  whenEmpty(callback: () => void): void {
    if (this.#sockets.size === 0) return callback();
    this.#onEmpty = () => {
      this.#onEmpty = undefined;
      callback();
    };
  }

  destroyAll(): number {
    const count = this.#sockets.size;
    for (const socket of this.#sockets) socket.destroy();
    return count;
  }
}

/** Reads of the shared counters, for the supervisor. */
export function readCounters(shared: SharedArrayBuffer): { live: number; rejected: number } {
  const view = new Int32Array(shared);
  return { live: Atomics.load(view, LIVE), rejected: Atomics.load(view, REJECTED) };
}

export const newCounterBuffer = () => new SharedArrayBuffer(COUNTER_SLOTS * Int32Array.BYTES_PER_ELEMENT);
