/**
 * What one listener thread knows of the backends: the latest snapshot from
 * the pool actor, the balancing policy over it, a keep-alive connection pool
 * (undici) per backend, and what it has seen of each backend on live traffic
 * (for passive health). Sockets cannot cross threads, so each listener
 * thread keeps its own upstream connections.
 */
import { Pool } from 'undici';
import type { Config } from '../config/schema.ts';
import type { BackendId, BackendState, PassiveReport, PoolSnapshot } from '../protocol.ts';
import type { Balancer } from '../pool/balancers/balancer.ts';
import { createBalancer } from '../pool/balancers/create.ts';
import type { InFlight } from '../pool/balancers/in-flight.ts';
import { hashKeyReader, type KeyedRequest, type KeyOf } from './hash-key.ts';

export class Upstreams {
  #config: Config;
  readonly #pools = new Map<BackendId, Pool>();
  #balancer: Balancer<BackendState>;
  #keyOf: KeyOf | undefined;
  #snapshot: PoolSnapshot | undefined;
  readonly #onPassive: (report: PassiveReport) => void;
  /** Backends this thread reported failures for since its last success with them. */
  readonly #failing = new Set<BackendId>();
  readonly inFlight: InFlight;
  #version = -1;
  #total = 0;
  #selectable: BackendState[] = [];

  constructor(config: Config, inFlight: InFlight, onPassive: (report: PassiveReport) => void) {
    this.#config = config;
    this.inFlight = inFlight;
    this.#onPassive = onPassive;
    const { algorithm, hash_key } = config.load_balancing;
    this.#balancer = createBalancer<BackendState>(algorithm, inFlight);
    this.#keyOf = algorithm === 'consistent_hash' ? hashKeyReader(hash_key) : undefined;
  }

  /**
   * A reload. A new balancing policy starts from the current snapshot; new
   * upstream timeouts apply to new connections: the pools close (requests on
   * them finish) and are opened again on demand.
   */
  reconfigure(config: Config): void {
    const before = this.#config;
    this.#config = config;
    const { algorithm, hash_key } = config.load_balancing;
    if (algorithm !== before.load_balancing.algorithm || hash_key !== before.load_balancing.hash_key) {
      this.#balancer = createBalancer<BackendState>(algorithm, this.inFlight);
      this.#keyOf = algorithm === 'consistent_hash' ? hashKeyReader(hash_key) : undefined;
      if (this.#snapshot) this.#balancer.reset(this.#snapshot.backends.filter((b) => b.enabled));
    }
    const timeouts = (c: Config) => `${c.proxy.upstream_connect_timeout_ms}/${c.proxy.upstream_timeout_ms}`;
    if (timeouts(config) !== timeouts(before)) {
      for (const pool of this.#pools.values()) void pool.close();
      this.#pools.clear();
    }
  }

  /** Returns the version now in use. Older snapshots than the one held are ignored. */
  apply(snapshot: PoolSnapshot): number {
    if (snapshot.version < this.#version) return this.#version;
    this.#version = snapshot.version;
    this.#snapshot = snapshot;
    this.#total = snapshot.backends.length;
    this.#selectable = snapshot.backends.filter((b) => b.selectable);
    this.#balancer.reset(snapshot.backends.filter((b) => b.enabled));
    const present = new Set(snapshot.backends.map((b) => b.id));
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

  pick(req: KeyedRequest, exclude?: ReadonlySet<string>): BackendState | undefined {
    return this.#balancer.pick(this.#keyOf?.(req), exclude);
  }

  /** Consistent hashing reads the request to choose; the other policies do not need it. */
  get needsRequestKey(): boolean {
    return this.#keyOf !== undefined;
  }

  poolFor(backend: BackendState): Pool {
    let pool = this.#pools.get(backend.id);
    if (!pool) {
      const proxy = this.#config.proxy;
      const host = backend.address.includes(':') ? `[${backend.address}]` : backend.address;
      pool = new Pool(`http://${host}:${backend.port}`, {
        connect: { timeout: proxy.upstream_connect_timeout_ms },
        headersTimeout: proxy.upstream_timeout_ms,
        bodyTimeout: proxy.upstream_timeout_ms,
      });
      this.#pools.set(backend.id, pool);
    }
    return pool;
  }

  /** A connect error, reset or timeout on live traffic. */
  noteFailure(backend: BackendId, code: string): void {
    if (!this.#config.health_check.passive) return;
    this.#failing.add(backend);
    this.#onPassive({ type: 'failure', backend, code });
  }

  /** A response came: crossing threads only when it ends a run of failures. */
  noteSuccess(backend: BackendId): void {
    if (this.#failing.size === 0 || !this.#failing.delete(backend)) return;
    this.#onPassive({ type: 'recovered', backend });
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((pool) => pool.destroy()));
    this.#pools.clear();
  }
}
