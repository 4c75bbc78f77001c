/**
 * The cache as the admin server sees it (main thread): its own handle on the
 * store, for purges (`DELETE /cache?url=…`, `DELETE /cache`) and for the
 * figures of /status and /metrics. The request counters are the listener
 * threads', added to the store every second (thread-cache.ts).
 */
import type { Config } from '../config/schema.ts';
import { urlFromOperator } from './keys.ts';
import { CacheStore, type StoreFigures } from './store.ts';

type CacheConfig = NonNullable<Config['cache']>;

export const CACHE_RESULTS = ['hit', 'miss', 'stale', 'bypass', 'revalidated'] as const;

export type PurgeAnswer =
  { status: 200; body: { purged: number } } | { status: 400 | 404 | 503; body: { error: string } };

export class AdminCache {
  readonly #config: CacheConfig;
  #store: CacheStore | undefined;

  constructor(config: CacheConfig) {
    this.#config = config;
  }

  #opened(): CacheStore {
    if (!this.#store || this.#store.closed) this.#store = new CacheStore(this.#config.path, this.#config.max_size_mb);
    return this.#store;
  }

  /** `url`: the absolute URL as the client used it (every variant goes); null: everything. */
  async purge(url: string | null): Promise<PurgeAnswer> {
    let key: string | undefined;
    if (url !== null) {
      try {
        key = urlFromOperator(url);
      } catch {
        return { status: 400, body: { error: 'url must be an absolute URL, such as http://example.com/path' } };
      }
    }
    try {
      return { status: 200, body: { purged: await this.#opened().purge(key) } };
    } catch (error) {
      this.#drop();
      return { status: 503, body: { error: `cache store unavailable: ${(error as Error).message}` } };
    }
  }

  figures(): StoreFigures | undefined {
    try {
      const store = this.#opened();
      store.refresh();
      return store.figures();
    } catch {
      this.#drop();
      return undefined;
    }
  }

  /** For /status. */
  status() {
    const figures = this.figures();
    if (!figures) return { path: this.#config.path, available: false };
    const count = (result: string) => figures.counters[result] ?? 0;
    const served = count('hit') + count('stale') + count('revalidated');
    const looked = served + count('miss');
    return {
      path: this.#config.path,
      available: true,
      size_bytes: figures.bytes,
      max_size_bytes: this.#config.max_size_mb * 1024 * 1024,
      entries: figures.entries,
      hit_ratio: looked === 0 ? null : served / looked,
      requests: Object.fromEntries(CACHE_RESULTS.map((result) => [result, count(result)])),
      evictions: figures.evictions,
    };
  }

  /** Prometheus text for /metrics. */
  metrics(): string {
    const figures = this.figures();
    if (!figures) return '';
    const lines = [
      '# HELP sluice_cache_requests_total Requests on caching routes, by what the cache did.',
      '# TYPE sluice_cache_requests_total counter',
      ...CACHE_RESULTS.map(
        (result) => `sluice_cache_requests_total{result="${result}"} ${figures.counters[result] ?? 0}`,
      ),
      '# HELP sluice_cache_bytes Bytes of the stored entries (headers and bodies).',
      '# TYPE sluice_cache_bytes gauge',
      `sluice_cache_bytes ${figures.bytes}`,
      '# HELP sluice_cache_entries Entries in the store.',
      '# TYPE sluice_cache_entries gauge',
      `sluice_cache_entries ${figures.entries}`,
      '# HELP sluice_cache_evictions_total Entries evicted to keep the store within max_size_mb.',
      '# TYPE sluice_cache_evictions_total counter',
      `sluice_cache_evictions_total ${figures.evictions}`,
    ];
    return `${lines.join('\n')}\n`;
  }

  #drop(): void {
    const store = this.#store;
    this.#store = undefined;
    store?.close().catch(failedAlready);
  }

  async close(): Promise<void> {
    await this.#store?.close();
    this.#store = undefined;
  }
}

function failedAlready(): void {
  // Closing a store dropped because it failed: a failed close says nothing the failure did not.
}
