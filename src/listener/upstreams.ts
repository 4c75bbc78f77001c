/**
 * What one listener thread knows of the backends: the latest snapshot from
 * the pool actor, a smooth weighted round robin over the healthy ones, and a
 * keep-alive connection pool (undici) per backend. Sockets cannot cross
 * threads, so each listener thread keeps its own upstream connections.
 */
import { Pool } from 'undici';
import type { BackendState, PoolSnapshot } from '../protocol.ts';
import { SmoothWeightedRoundRobin } from '../pool/smooth-wrr.ts';
import type { ProxyConfig } from './types.ts';

export class Upstreams {
  readonly #proxy: ProxyConfig;
  readonly #pools = new Map<string, Pool>();
  readonly #balancer = new SmoothWeightedRoundRobin<BackendState>();
  #version = -1;
  #total = 0;

  constructor(proxy: ProxyConfig) {
    this.#proxy = proxy;
  }

  apply(snapshot: PoolSnapshot): void {
    if (snapshot.version <= this.#version && this.#version !== -1) return;
    this.#version = snapshot.version;
    this.#total = snapshot.backends.length;
    this.#balancer.reset(snapshot.backends.filter((b) => b.healthy));
    const present = new Set(snapshot.backends.map((b) => b.id));
    for (const [id, pool] of this.#pools) {
      if (present.has(id)) continue;
      this.#pools.delete(id);
      // Requests already on it finish; close() waits for them.
      void pool.close();
    }
  }

  get received(): boolean {
    return this.#version !== -1;
  }

  get healthyCount(): number {
    return this.#balancer.size;
  }

  get totalCount(): number {
    return this.#total;
  }

  pick(exclude?: ReadonlySet<string>): BackendState | undefined {
    return this.#balancer.pick(exclude);
  }

  poolFor(backend: BackendState): Pool {
    let pool = this.#pools.get(backend.id);
    if (!pool) {
      const host = backend.address.includes(':') ? `[${backend.address}]` : backend.address;
      pool = new Pool(`http://${host}:${backend.port}`, {
        connect: { timeout: this.#proxy.upstream_connect_timeout_ms },
        headersTimeout: this.#proxy.upstream_timeout_ms,
        bodyTimeout: this.#proxy.upstream_timeout_ms,
      });
      this.#pools.set(backend.id, pool);
    }
    return pool;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((pool) => pool.destroy()));
    this.#pools.clear();
  }
}
