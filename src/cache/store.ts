/**
 * The shared cache's store: one LMDB environment at `cache.path`, opened by
 * every listener thread (and by the admin server, for purges and figures),
 * shared with a hot restart's successor because it lives on disk.
 *
 *   entries  variant key → one binary value: [u32 meta length][f64 stamp][meta JSON][body]
 *            (the stamp is unique per write: a thread's decoded copy of the meta is valid while it matches)
 *   vary     URL → the request headers its stored response varies on
 *   access   variant key → last use (ms), the LRU bookkeeping
 *   locks    lock key → { owner, expires }: the coalescing lock (lock.ts)
 *   stats    name → number: bytes stored, evictions, request counters
 *
 * Reads are synchronous through the memory map: a hit never waits on another
 * thread. Writes are lmdb-js's batched asynchronous transactions. An entry
 * is written in one transaction, whole, after its body was complete: a crash
 * or SIGKILL leaves the entry or nothing, never a cut body. Inside a
 * transaction's callback the writes are putSync and removeSync: they join
 * that transaction at once (lmdb-js's put would too, returning a promise
 * already resolved), and the transaction's promise alone reports the commit.
 *
 * Full disks: the map is not a write map (`useWritemap: false`, lmdb-js's
 * default), so pages are written with pwrite and a full disk fails the write
 * with ENOSPC instead of raising SIGBUS on a store into a mapped page the
 * filesystem cannot back. `noSync`: a cache can lose its last transactions
 * on a power loss (LMDB then keeps its integrity without a write map); a
 * process crash loses nothing, the kernel holds the written pages.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Database, RootDatabase } from 'lmdb';
import type { EntryMeta } from './entry.ts';

const MIB = 1024 * 1024;

/** lmdb (a native addon) is loaded when a store is first opened: a proxy without a cache never loads it. */
let lmdb: typeof import('lmdb') | undefined;
function loadLmdb(): typeof import('lmdb') {
  if (lmdb) return lmdb;
  lmdb = createRequire(import.meta.url)('lmdb') as typeof import('lmdb');
  // A commit that fails (a full disk: EIO/ENOSPC from pwrite) rejects the writes it held, which the
  // callers handle, and one more promise lmdb-js makes itself, which nobody can: Node would end the
  // thread for it. That one is recognised by its `commitError` and dropped; any other unhandled
  // rejection is thrown as Node's default would.
  process.on('unhandledRejection', (reason) => {
    if (reason instanceof Error && 'commitError' in reason) {
      (reason as { commitError?: Promise<unknown> }).commitError?.catch(reportedByTheCaller);
      return;
    }
    throw reason;
  });
  return lmdb;
}
/** lmdb-js's longest key (bytes of the encoded key): longer URLs are not cached. */
export const MAX_KEY_BYTES = 1900;
/** An entry's last use is written again only when older than this: a hit does not write every time. */
const ACCESS_RESOLUTION_MS = 1000;

export interface StoredEntry {
  meta: EntryMeta;
  body: Buffer;
  /** Bytes the entry holds in the store (head and body): what max_size_mb bounds. */
  size: number;
}

export interface StoreFigures {
  bytes: number;
  entries: number;
  evictions: number;
  counters: Record<string, number>;
}

export interface CacheLock {
  owner: string;
  expires: number;
}

export type Vary = readonly string[] | '*';

/**
 * A write's promise, with lmdb-js's `commitError` (a second promise, rejected with the disk's
 * error when a commit fails) handled: left alone, it would be an unhandled rejection.
 */
function written<T>(write: Promise<T>): Promise<T> {
  return write.catch((error: unknown) => {
    (error as { commitError?: Promise<unknown> } | undefined)?.commitError?.catch(reportedByTheCaller);
    throw error;
  });
}

const HEADER_BYTES = 12;
/** The layout of entries: a store written in another is emptied when opened (a cache can start cold). */
const FORMAT = 1;
let lastStamp = 0;

export function encodeEntry(meta: EntryMeta, body: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const out = Buffer.allocUnsafe(HEADER_BYTES + json.length + body.length);
  out.writeUInt32LE(json.length, 0);
  // Unique enough across threads and processes: time, a random part, and never the same twice here.
  lastStamp = Math.max(lastStamp + 1, Date.now() * 1024 + Math.floor(Math.random() * 1024));
  out.writeDoubleLE(lastStamp, 4);
  json.copy(out, HEADER_BYTES);
  body.copy(out, HEADER_BYTES + json.length);
  return out;
}

/** An entry's value as read: its stamp, and its meta decoded only when asked. */
export const entryStamp = (value: Buffer): number => value.readDoubleLE(4);
export const entryMeta = (value: Buffer): EntryMeta =>
  JSON.parse(value.toString('utf8', HEADER_BYTES, HEADER_BYTES + value.readUInt32LE(0))) as EntryMeta;
/** The end given: a buffer from getFast is longer than its value (its `length` says the value's). */
export const entryBody = (value: Buffer): Buffer => value.subarray(HEADER_BYTES + value.readUInt32LE(0), value.length);

function decodeEntry(value: Buffer): StoredEntry {
  return { meta: entryMeta(value), body: entryBody(value), size: value.length };
}

export class CacheStore {
  readonly path: string;
  readonly maxBytes: number;
  readonly #root: RootDatabase;
  readonly #entries: Database<Buffer, string>;
  readonly #vary: Database<Vary, string>;
  readonly #access: Database<number, string>;
  readonly #locks: Database<CacheLock, string>;
  readonly #stats: Database<number, string>;
  #closed = false;

  constructor(path: string, maxSizeMb: number) {
    this.path = path;
    this.maxBytes = maxSizeMb * MIB;
    mkdirSync(path, { recursive: true });
    this.#root = loadLmdb().open({
      path,
      // Room for the bound, LMDB's own pages and the free pages a busy store keeps; never smaller than 64 MiB.
      mapSize: Math.max(64 * MIB, 2 * this.maxBytes + 16 * MIB),
      maxDbs: 8,
      noSync: true,
      useWritemap: false,
    });
    this.#entries = this.#root.openDB<Buffer, string>({ name: 'entries', encoding: 'binary' });
    this.#vary = this.#root.openDB<Vary, string>({ name: 'vary' });
    this.#access = this.#root.openDB<number, string>({ name: 'access' });
    this.#locks = this.#root.openDB<CacheLock, string>({ name: 'locks' });
    this.#stats = this.#root.openDB<number, string>({ name: 'stats' });
    if (this.#stats.get('format') !== FORMAT) {
      this.#root.transactionSync(() => {
        for (const db of [this.#entries, this.#vary, this.#access, this.#locks]) db.clearSync();
        this.#stats.putSync('bytes', 0);
        this.#stats.putSync('format', FORMAT);
      });
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The coalescing lock on `key`, if any (expired or not). */
  lockOn(key: string): CacheLock | undefined {
    return this.#locks.get(key);
  }

  /** Takes the lock on `key` for `owner` unless a live one is held: in a write transaction, so one taker wins. */
  takeLock(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return written(
      this.#locks.transaction(() => {
        const now = Date.now();
        const held = this.#locks.get(key);
        if (held !== undefined && held.expires > now) return false;
        this.#locks.putSync(key, { owner, expires: now + ttlMs });
        return true;
      }),
    );
  }

  dropLock(key: string): Promise<boolean> {
    return written(this.#locks.remove(key));
  }

  /** Reads see what other threads and processes committed until now (another's message said it did). */
  refresh(): void {
    this.#root.resetReadTxn();
  }

  varyOf(url: string): Vary | undefined {
    return this.#vary.get(url);
  }

  get(variantKey: string): StoredEntry | undefined {
    const value = this.#entries.getBinary(variantKey);
    return value === undefined ? undefined : decodeEntry(value);
  }

  /**
   * The entry's value in lmdb-js's reused buffer: valid only until the next read of this store,
   * so whatever is kept of it must be copied at once. A hit reads it without copying the whole.
   */
  getFast(variantKey: string): Buffer | undefined {
    return this.#entries.getBinaryFast(variantKey);
  }

  /** Records a use, for LRU eviction; not awaited (a failed write only loses recency). */
  touch(variantKey: string, now = Date.now()): void {
    const last = this.#access.get(variantKey);
    if (last !== undefined && now - last < ACCESS_RESOLUTION_MS) return;
    written(this.#access.put(variantKey, now)).catch(onlyRecencyLost);
  }

  /**
   * Writes a whole entry (replacing the variant's previous one) in one
   * transaction. Returns whether the store is now over its bound.
   */
  async commit(url: string, vary: Vary, variantKey: string, value: Buffer): Promise<boolean> {
    return written(
      this.#root.transaction(() => {
        const previous = this.#entries.getBinary(variantKey);
        this.#entries.putSync(variantKey, value);
        this.#vary.putSync(url, vary);
        this.#access.putSync(variantKey, Date.now());
        const bytes = (this.#stats.get('bytes') ?? 0) + value.length - (previous?.length ?? 0);
        this.#stats.putSync('bytes', bytes);
        return bytes > this.maxBytes;
      }),
    );
  }

  /** Least recently used entries go until the stored bytes fit the bound; returns how many went. */
  async evict(): Promise<number> {
    return written(
      this.#root.transaction(() => {
        let bytes = this.#stats.get('bytes') ?? 0;
        if (bytes <= this.maxBytes) return 0;
        const byAge = [...this.#access.getRange({})].sort((a, b) => a.value - b.value);
        let evicted = 0;
        for (const { key } of byAge) {
          if (bytes <= this.maxBytes) break;
          bytes -= this.#removeVariant(key);
          evicted++;
        }
        this.#stats.putSync('bytes', bytes);
        this.#stats.putSync('evictions', (this.#stats.get('evictions') ?? 0) + evicted);
        return evicted;
      }),
    );
  }

  /** Inside a transaction: removes one variant; returns its size. */
  #removeVariant(variantKey: string): number {
    const value = this.#entries.getBinary(variantKey);
    this.#entries.removeSync(variantKey);
    this.#access.removeSync(variantKey);
    return value?.length ?? 0;
  }

  /** Every variant of `url` (or, without one, everything); returns how many entries went. */
  async purge(url?: string): Promise<number> {
    return written(
      this.#root.transaction(() => {
        const range = url === undefined ? {} : { start: `${url}\u0000`, end: `${url}\u0001` };
        let bytes = this.#stats.get('bytes') ?? 0;
        let purged = 0;
        for (const key of [...this.#entries.getKeys(range)]) {
          bytes -= this.#removeVariant(key);
          purged++;
        }
        if (url === undefined) for (const key of [...this.#vary.getKeys({})]) this.#vary.removeSync(key);
        else this.#vary.removeSync(url);
        this.#stats.putSync('bytes', Math.max(0, bytes));
        return purged;
      }),
    );
  }

  /** Adds a thread's request counters (`result` → count) to the shared ones. */
  async addCounters(deltas: ReadonlyMap<string, number>): Promise<void> {
    await written(
      this.#root.transaction(() => {
        for (const [name, delta] of deltas)
          this.#stats.putSync(`requests.${name}`, (this.#stats.get(`requests.${name}`) ?? 0) + delta);
      }),
    );
  }

  figures(): StoreFigures {
    const counters: Record<string, number> = {};
    for (const { key, value } of this.#stats.getRange({ start: 'requests.', end: 'requests/' }))
      counters[key.slice(9)] = value;
    return {
      bytes: this.#stats.get('bytes') ?? 0,
      entries: (this.#entries.getStats() as { entryCount: number }).entryCount,
      evictions: this.#stats.get('evictions') ?? 0,
      counters,
    };
  }

  /** The health probe: a write and a read of `key`, whole. Rejects on a failed write (ENOSPC, map full). */
  async probe(key: string): Promise<void> {
    const value = `${Date.now()}:${Math.random()}`;
    await written(this.#root.put(`probe:${key}`, value));
    if (this.#root.get(`probe:${key}`) !== value) throw new Error('probe read back something else');
  }

  /** The probe at start-up, before the thread serves: synchronous, so the first requests find the store healthy. */
  probeSync(key: string): void {
    const value = `${Date.now()}:${Math.random()}`;
    this.#root.putSync(`probe:${key}`, value);
    if (this.#root.get(`probe:${key}`) !== value) throw new Error('probe read back something else');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#root.close();
  }
}

function reportedByTheCaller(): void {
  // The failed commit's own promise: the writes it held were rejected to their callers, who report it.
}

function onlyRecencyLost(): void {
  // A use that could not be recorded: the entry is untouched, only its place in the LRU order is older.
}
