/**
 * What one listener thread knows of one upstream group: its backends in the
 * latest snapshot from the pool actor, the balancing policy over them, a
 * keep-alive connection pool (undici) per backend, and what it has seen of
 * each backend on live traffic (for passive health). Sockets cannot cross
 * threads, so each listener thread keeps its own upstream connections.
 */
import type { Pool } from 'undici';
import type { UpstreamGroup } from '../config/upstream-groups.ts';
import type { ProxyConfig } from './types.ts';
import type { BackendId, BackendState, PassiveReport, PoolSnapshot } from '../protocol.ts';
import type { Balancer } from '../pool/balancers/balancer.ts';
import { createBalancer } from '../pool/balancers/create.ts';
import type { InFlight } from '../pool/balancers/in-flight.ts';
import { hashKeyReader, type KeyedRequest, type KeyOf } from './hash-key.ts';
import { tlsIdentity, upstreamTlsOptions } from '../tls/upstream-tls.ts';

/** The TLS settings each undici pool was opened with ('' for plain): see poolFor. */
const poolTls = new WeakMap<Pool, string>();

let undici: typeof import('undici') | undefined;

/**
 * undici, for requests on Node's http server (`fast_path: false`, or what
 * the fast path hands over): loaded on first need, as it costs each thread
 * ~7 MB and ~30 ms to load, and the fast path never uses it.
 */
export async function loadUndici(): Promise<typeof import('undici')> {
  return (undici ??= await import('undici'));
}

/** What a group is configured with: its own sections, and the proxy's upstream timeouts. */
export interface GroupSettings {
  group: Pick<UpstreamGroup, 'name' | 'health_check' | 'load_balancing'>;
  proxy: ProxyConfig;
}

export class Upstreams {
  readonly name: string;
  #config: GroupSettings;
  readonly #pools = new Map<BackendId, Pool>();
  #balancer: Balancer<BackendState>;
  #keyOf: KeyOf | undefined;
  /** This group's backends in the latest snapshot. */
  #members: BackendState[] = [];
  readonly #onPassive: (report: PassiveReport) => void;
  /** Backends this thread reported failures for since its last success with them. */
  readonly #failing = new Set<BackendId>();
  readonly inFlight: InFlight;
  #version = -1;
  #total = 0;
  #selectable: BackendState[] = [];

  constructor(config: GroupSettings, inFlight: InFlight, onPassive: (report: PassiveReport) => void) {
    this.name = config.group.name;
    this.#config = config;
    this.inFlight = inFlight;
    this.#onPassive = onPassive;
    const { algorithm, hash_key } = config.group.load_balancing;
    this.#balancer = createBalancer<BackendState>(algorithm, inFlight);
    this.#keyOf = algorithm === 'consistent_hash' ? hashKeyReader(hash_key) : undefined;
  }

  /**
   * A reload. A new balancing policy starts from the current snapshot; new
   * upstream timeouts apply to new connections: the pools close (requests on
   * them finish) and are opened again on demand.
   */
  reconfigure(config: GroupSettings): void {
    const before = this.#config;
    this.#config = config;
    const { algorithm, hash_key } = config.group.load_balancing;
    if (algorithm !== before.group.load_balancing.algorithm || hash_key !== before.group.load_balancing.hash_key) {
      this.#balancer = createBalancer<BackendState>(algorithm, this.inFlight);
      this.#keyOf = algorithm === 'consistent_hash' ? hashKeyReader(hash_key) : undefined;
      this.#balancer.reset(this.#members.filter((b) => b.enabled));
    }
    const timeouts = (c: GroupSettings) => `${c.proxy.upstream_connect_timeout_ms}/${c.proxy.upstream_timeout_ms}`;
    if (timeouts(config) !== timeouts(before)) {
      for (const pool of this.#pools.values()) void pool.close();
      this.#pools.clear();
    }
  }

  /** Returns the version now in use. Older snapshots than the one held are ignored. */
  apply(snapshot: PoolSnapshot): number {
    if (snapshot.version < this.#version) return this.#version;
    this.#version = snapshot.version;
    const members = snapshot.backends.filter((b) => b.upstream === this.name);
    this.#members = members;
    this.#total = members.length;
    this.#selectable = members.filter((b) => b.selectable);
    this.#balancer.reset(members.filter((b) => b.enabled));
    const present = new Set(members.map((b) => b.id));
    for (const [id, pool] of this.#pools) {
      if (present.has(id)) continue;
      this.#pools.delete(id);
      // Requests already on it finish; close() waits for them.
      void pool.close();
    }
    return this.#version;
  }

  get selectableCount(): number {
    return this.#selectable.length;
  }

  /** The backends a request may go to now. */
  get selectable(): readonly BackendState[] {
    return this.#selectable;
  }

  get totalCount(): number {
    return this.#total;
  }

  /** `health_check.min_healthy` selectable backends: what /ready and start-up wait for. */
  get available(): boolean {
    return this.#selectable.length >= this.#config.group.health_check.min_healthy;
  }

  pick(req: KeyedRequest, exclude?: ReadonlySet<string>): BackendState | undefined {
    return this.#balancer.pick(this.#keyOf?.(req), exclude);
  }

  /** Consistent hashing reads the request to choose; the other policies do not need it. */
  get needsRequestKey(): boolean {
    return this.#keyOf !== undefined;
  }

  async poolFor(backend: BackendState): Promise<Pool> {
    const identity = backend.tls ? tlsIdentity(backend.tls) : '';
    let pool = this.#pools.get(backend.id);
    // Opened before a reload changed the backend's TLS settings: requests on it finish, new ones get a new pool.
    if (pool && poolTls.get(pool) !== identity) {
      this.#pools.delete(backend.id);
      void pool.close();
      pool = undefined;
    }
    if (!pool) {
      const { Pool } = undici ?? (await loadUndici());
      // Another request may have opened it while undici loaded.
      const opened = this.#pools.get(backend.id);
      if (opened) return opened;
      const proxy = this.#config.proxy;
      const host = backend.address.includes(':') ? `[${backend.address}]` : backend.address;
      const tls = backend.tls && upstreamTlsOptions(backend.tls);
      pool = new Pool(`${tls ? 'https' : 'http'}://${host}:${backend.port}`, {
        connect: { timeout: proxy.upstream_connect_timeout_ms, ...tls },
        headersTimeout: proxy.upstream_timeout_ms,
        bodyTimeout: proxy.upstream_timeout_ms,
      });
      this.#pools.set(backend.id, pool);
      poolTls.set(pool, identity);
    }
    return pool;
  }

  /** A connect error, reset or timeout on live traffic. */
  noteFailure(backend: BackendId, code: string): void {
    if (!this.#config.group.health_check.passive) return;
    this.#failing.add(backend);
    this.#onPassive({ type: 'failure', backend, code });
  }

  /** A response came: crossing threads only when it ends a run of failures. */
  noteSuccess(backend: BackendId): void {
    if (this.#failing.size === 0 || !this.#failing.delete(backend)) return;
    this.#onPassive({ type: 'recovered', backend });
  }

  /** Removed by a reload: idle connections close, requests already on them finish. */
  retire(): void {
    for (const pool of this.#pools.values()) void pool.close();
    this.#pools.clear();
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((pool) => pool.destroy()));
    this.#pools.clear();
  }
}
