/**
 * Coalescing (nginx's proxy_cache_lock, pingora's cache lock): concurrent
 * misses for one key, in any listener thread or process, make one upstream
 * request. The first takes a lock entry in the store, in a write
 * transaction, so exactly one wins across threads; the others wait until it
 * is gone (the response stored, or found not storable) and look again.
 *
 * Waiters hear of it by a BroadcastChannel message from the thread that
 * held the lock (same process), and, for a holder in another process (a
 * hot restart's predecessor) or a message missed, by polling the lock with
 * a backoff. A lock carries its expiry: a holder that died leaves a lock
 * that stops counting after `lock_timeout_ms`, and no waiter waits longer.
 */
import { BroadcastChannel, threadId } from 'node:worker_threads';
import type { CacheStore } from './store.ts';

export type WaitEnd = 'stored' | 'released' | 'timeout';

const FIRST_POLL_MS = 10;
const LONGEST_POLL_MS = 250;

interface Message {
  kind: 'stored' | 'released';
  key: string;
}

export class Coalescer {
  readonly #store: () => CacheStore | undefined;
  readonly #channel: BroadcastChannel;
  readonly #owner = `${process.pid}:${threadId}`;
  /** Keys whose lock this thread holds, or is taking: this thread's other misses wait without asking the store. */
  readonly #local = new Map<string, Promise<boolean>>();
  readonly #waiters = new Map<string, Set<(end: WaitEnd) => void>>();

  constructor(path: string, store: () => CacheStore | undefined) {
    this.#store = store;
    this.#channel = new BroadcastChannel(`sluice.cache:${path}`);
    this.#channel.onmessage = (event: unknown) => {
      const message = (event as { data: Message }).data;
      if (message.kind === 'stored') this.#store()?.refresh();
      this.#wake(message.key, message.kind);
    };
    // A channel alone must not keep a thread alive.
    (this.#channel as unknown as { unref?: () => void }).unref?.();
  }

  /** Takes the lock for `key` (true), or says someone holds it (false): then `wait`. */
  async acquire(key: string, ttlMs: number): Promise<boolean> {
    if (this.#local.has(key)) return false;
    const store = this.#store();
    if (!store) return true;
    const taking = store.takeLock(key, this.#owner, ttlMs);
    this.#local.set(key, taking);
    let won: boolean;
    try {
      won = await taking;
    } catch {
      // The lock could not be written: this request goes upstream as its holder rather than wait for nobody.
      won = true;
    }
    if (!won) this.#local.delete(key);
    return won;
  }

  /** Someone holds the lock on `key` now (a read: for requests that wait but never take it). */
  isLocked(key: string): boolean {
    if (this.#local.has(key)) return true;
    const held = this.#store()?.lockOn(key);
    return held !== undefined && held.expires > Date.now();
  }

  /** The lock holder is done: `stored` when the entry is in the store now. */
  release(key: string, stored: boolean): void {
    this.#local.delete(key);
    const kind = stored ? 'stored' : 'released';
    const store = this.#store();
    const done = () => {
      this.#wake(key, kind);
      this.#channel.postMessage({ kind, key } satisfies Message);
    };
    if (!store) return done();
    store.dropLock(key).then(done, done);
  }

  /** Waits for the lock on `key` to go, at most `timeoutMs`. */
  wait(key: string, timeoutMs: number): Promise<WaitEnd> {
    return new Promise((resolve) => {
      let settled = false;
      let poll: NodeJS.Timeout | undefined;
      const end = (how: WaitEnd) => {
        if (settled) return;
        settled = true;
        clearTimeout(poll);
        clearTimeout(deadline);
        this.#waiters.get(key)?.delete(end);
        if (this.#waiters.get(key)?.size === 0) this.#waiters.delete(key);
        resolve(how);
      };
      const deadline = setTimeout(() => end('timeout'), timeoutMs);
      let every = FIRST_POLL_MS;
      const check = () => {
        // A lock of this thread's is heard of directly; another's is looked at in the store.
        if (!this.#local.has(key)) {
          const store = this.#store();
          store?.refresh();
          const held = store?.lockOn(key);
          if (held === undefined || held.expires <= Date.now()) {
            end('released');
            return;
          }
        }
        poll = setTimeout(check, every);
        every = Math.min(LONGEST_POLL_MS, every * 2);
      };
      let waiters = this.#waiters.get(key);
      if (!waiters) this.#waiters.set(key, (waiters = new Set()));
      waiters.add(end);
      poll = setTimeout(check, every);
    });
  }

  #wake(key: string, kind: 'stored' | 'released'): void {
    const waiters = this.#waiters.get(key);
    if (!waiters) return;
    for (const end of [...waiters]) end(kind);
  }

  close(): void {
    this.#channel.close();
    for (const waiters of this.#waiters.values()) for (const end of [...waiters]) end('timeout');
  }
}
