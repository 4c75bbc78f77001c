/**
 * One listener thread's view of the shared cache: its own handle on the
 * LMDB store (reads go through the memory map, so no hit waits on another
 * thread), the coalescing lock, the background health probe, and its
 * request counters, added to the store's every second so that the admin
 * server (another thread) reads one set of figures.
 */
import { threadId } from 'node:worker_threads';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { RequestHead } from '../listener/http1/request-head.ts';
import type { Route } from '../routing/route-table.ts';
import type { Upstreams } from '../listener/upstreams.ts';
import { CacheStep } from './cache-step.ts';
import { Coalescer } from './coalesce.ts';
import { HotEntries } from './hot-entries.ts';
import type { EntryMeta } from './entry.ts';
import type { ExchangeTap } from './exchange-tap.ts';
import type { CacheResult, CacheThread } from './cache-thread.ts';
import { diskFull, errorCode, PROBE_INTERVAL_MS, timedProbe } from './health.ts';
import type { Policy } from './policy.ts';
import { revalidateInBackground } from './background-revalidation.ts';
import { CacheStore, encodeEntry, type StoredEntry, type Vary } from './store.ts';

export type CacheConfig = NonNullable<Config['cache']>;

const MIB = 1024 * 1024;
const COUNTER_FLUSH_MS = 1_000;

export class ThreadCache implements CacheThread {
  readonly #config: CacheConfig;
  readonly #log: Logger;
  #store: CacheStore | undefined;
  #healthy = false;
  #probing = false;
  readonly coalescer: Coalescer;
  /** What this thread decoded of the entries it served lately (hot-entries.ts). */
  readonly hot = new HotEntries();
  readonly #counters = new Map<string, number>();
  readonly #probeTimer: NodeJS.Timeout;
  readonly #flushTimer: NodeJS.Timeout;
  /** Body bytes of responses being collected for the store, in this thread (bounded: see hold). */
  #held = 0;
  /** The upstream timeout, for background revalidations. */
  upstreamTimeoutMs = 60_000;

  constructor(config: CacheConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
    this.coalescer = new Coalescer(config.path, () => this.#store);
    this.#open();
    try {
      this.#store?.probeSync(`${process.pid}:${threadId}`);
      if (this.#store) this.#setHealthy(true);
    } catch (error) {
      this.#unhealthy(errorCode(error));
    }
    this.#probeTimer = setInterval(() => void this.probe(), PROBE_INTERVAL_MS).unref();
    this.#flushTimer = setInterval(() => void this.#flushCounters(), COUNTER_FLUSH_MS).unref();
  }

  get store(): CacheStore | undefined {
    return this.#healthy ? this.#store : undefined;
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  get lockTimeoutMs(): number {
    return this.#config.lock_timeout_ms;
  }

  get maxObjectBytes(): number {
    return this.#config.max_object_mb * MIB;
  }

  stepFor(head: RequestHead, proto: string, route: Route | undefined, upstreams: Upstreams): ExchangeTap {
    return new CacheStep(this, head, proto, route, upstreams);
  }

  /**
   * A response is collected in memory until it is complete. What a thread holds so is bounded by
   * max(64 MiB, 2 × max_object_mb): past it, a response streams on and is not stored.
   */
  hold(bytes: number): boolean {
    if (this.#held + bytes > Math.max(64 * MIB, 2 * this.maxObjectBytes)) return false;
    this.#held += bytes;
    return true;
  }

  unhold(bytes: number): void {
    this.#held = Math.max(0, this.#held - bytes);
  }

  count(result: CacheResult): void {
    this.#counters.set(result, (this.#counters.get(result) ?? 0) + 1);
  }

  /** A complete response goes into the store; the coalescing lock `lock` (if held) goes once it is there. */
  commit(url: string, vary: Vary, key: string, value: Buffer, lock: string | undefined): void {
    const store = this.store;
    const release = (stored: boolean) => lock !== undefined && this.coalescer.release(lock, stored);
    if (!store) return void release(false);
    store.commit(url, vary, key, value).then(
      (over) => {
        release(true);
        if (over) void this.#evict(store);
      },
      (error: unknown) => {
        release(false);
        this.#failed(error, 'commit');
      },
    );
  }

  /** A 304 refreshed an entry: its new headers and freshness, the same body. */
  recommit(url: string, key: string, meta: EntryMeta, body: Buffer): void {
    const store = this.store;
    if (!store) return;
    this.commit(url, store.varyOf(url) ?? [], key, encodeEntry(meta, body), undefined);
  }

  purge(url: string): void {
    this.store?.purge(url).catch((error: unknown) => this.#failed(error, 'purge'));
  }

  revalidateInBackground(
    key: string,
    url: string,
    target: string,
    entry: StoredEntry,
    policy: Policy,
    headers: Record<string, string>,
    route: Route | undefined,
    upstreams: Upstreams,
  ): void {
    void revalidateInBackground(this, { key, url, target, entry, policy, headers, route, upstreams });
  }

  async #evict(store: CacheStore): Promise<void> {
    try {
      const evicted = await store.evict();
      if (evicted > 0) this.#log.debug({ evicted }, 'cache entries evicted');
    } catch (error) {
      this.#failed(error, 'evict');
    }
  }

  #open(): void {
    try {
      this.#store = new CacheStore(this.#config.path, this.#config.max_size_mb);
    } catch (error) {
      this.#store = undefined;
      this.#setHealthy(false, errorCode(error));
    }
  }

  /** One probe: a closed store is opened again first. */
  async probe(): Promise<boolean> {
    if (this.#probing) return this.#healthy;
    this.#probing = true;
    try {
      if (!this.#store) this.#open();
      const store = this.#store;
      if (!store) return false;
      const result = (await diskFull(store.path).catch(() => true))
        ? { ok: false as const, code: 'ENOSPC' }
        : await timedProbe(() => store.probe(`${process.pid}:${threadId}`));
      if (result.ok) this.#setHealthy(true);
      // Slow is not broken: unhealthy (bypassing) until a probe is quick again, the store kept open.
      else if (result.code === 'CACHE_PROBE_SLOW') this.#setHealthy(false, result.code);
      else this.#unhealthy(result.code);
      return result.ok;
    } finally {
      this.#probing = false;
    }
  }

  #failed(error: unknown, operation: string): void {
    const code = errorCode(error);
    this.#log.warn({ code, operation }, 'cache store operation failed');
    // A write the disk refused: bypass and reopen (the probes find when space is back).
    if (code === 'ENOSPC' || code === 'MDB_MAP_FULL' || code === 'CACHE_WRITE_FAILED') this.#unhealthy(code);
  }

  /** Bypass from now on; the store is closed and the next probe opens it again. */
  #unhealthy(code: string): void {
    this.#setHealthy(false, code);
    const store = this.#store;
    this.#store = undefined;
    store?.close().catch((error: unknown) => this.#log.debug({ code: errorCode(error) }, 'cache store close failed'));
  }

  #setHealthy(healthy: boolean, code?: string): void {
    if (healthy === this.#healthy) return;
    this.#healthy = healthy;
    if (healthy) this.#log.info({ event: 'cache.healthy', path: this.#config.path }, 'cache store healthy');
    else
      this.#log.warn(
        { event: 'cache.unhealthy', code, path: this.#config.path },
        'cache store unhealthy: bypassing the cache',
      );
  }

  async #flushCounters(): Promise<void> {
    const store = this.store;
    if (!store || this.#counters.size === 0) return;
    const deltas = new Map(this.#counters);
    this.#counters.clear();
    await store.addCounters(deltas).catch(() => {
      for (const [name, n] of deltas) this.#counters.set(name, (this.#counters.get(name) ?? 0) + n);
    });
  }

  async close(): Promise<void> {
    clearInterval(this.#probeTimer);
    clearInterval(this.#flushTimer);
    await this.#flushCounters();
    this.coalescer.close();
    await this.#store?.close();
    this.#store = undefined;
  }
}
