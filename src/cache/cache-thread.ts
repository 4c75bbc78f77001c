/**
 * What a request's cache step (cache-step.ts) and a background
 * revalidation (background-revalidation.ts) use of their thread's cache:
 * ThreadCache implements it. They depend on this view, not on ThreadCache,
 * which creates them: the cycle check in npm test keeps the layers a line.
 */
import type { Route } from '../routing/route-table.ts';
import type { Upstreams } from '../listener/upstreams.ts';
import type { Coalescer } from './coalesce.ts';
import type { EntryMeta } from './entry.ts';
import type { HotEntries } from './hot-entries.ts';
import type { Policy } from './policy.ts';
import type { CacheStore, StoredEntry, Vary } from './store.ts';

export type CacheResult = 'hit' | 'miss' | 'stale' | 'bypass' | 'revalidated';

export interface CacheThread {
  readonly coalescer: Coalescer;
  readonly hot: HotEntries;
  readonly store: CacheStore | undefined;
  readonly healthy: boolean;
  readonly lockTimeoutMs: number;
  readonly maxObjectBytes: number;
  /** The upstream timeout, for background revalidations. */
  readonly upstreamTimeoutMs: number;
  hold(bytes: number): boolean;
  unhold(bytes: number): void;
  count(result: CacheResult): void;
  commit(url: string, vary: Vary, key: string, value: Buffer, lock: string | undefined): void;
  recommit(url: string, key: string, meta: EntryMeta, body: Buffer): void;
  purge(url: string): void;
  revalidateInBackground(
    key: string,
    url: string,
    target: string,
    entry: StoredEntry,
    policy: Policy,
    headers: Record<string, string>,
    route: Route | undefined,
    upstreams: Upstreams,
  ): void;
}
