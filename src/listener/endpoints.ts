/**
 * The proxy's own endpoints, answered inside the listener thread from state
 * it already holds, never forwarded: /health (lifecycle), /ready (lifecycle
 * and dependencies, the seed's body), /live (the process runs).
 */
import type { ProxyConfig } from './types.ts';
import type { ListenerStatus } from '../protocol.ts';

export interface EndpointAnswer {
  status: number;
  body: unknown;
}

export interface ReadinessInputs {
  status: ListenerStatus;
  /**
   * Every upstream a route names (or `default`, without routes) has at least
   * its `health_check.min_healthy` backends enabled, healthy and not ejected.
   */
  backendsAvailable: boolean;
  /** The cache store is open and its last probe passed (true without a cache). */
  cacheHealthy?: boolean;
}

export type EndpointName = 'health' | 'ready' | 'live';

export function endpointFor(path: string, proxy: ProxyConfig): EndpointName | undefined {
  const query = path.indexOf('?');
  const bare = query === -1 ? path : path.slice(0, query);
  if (bare === proxy.health_path) return 'health';
  if (bare === proxy.ready_path) return 'ready';
  if (bare === proxy.live_path) return 'live';
  return undefined;
}

/** What /ready checks, and what request hooks see through `ProxyView`: one rule for both. */
export function readinessChecks({ status, backendsAvailable, cacheHealthy = true }: ReadinessInputs) {
  return {
    backends_available: backendsAvailable,
    pool_healthy: status.poolHealthy,
    // Without a cache nothing can hold readiness back here.
    cache_healthy: cacheHealthy,
  };
}

export function answerEndpoint(name: EndpointName, inputs: ReadinessInputs): EndpointAnswer {
  const status = inputs.status;
  switch (name) {
    case 'health':
      return status.state === 'healthy'
        ? { status: 200, body: { status: 'healthy', state: status.state } }
        : { status: 503, body: { status: 'unhealthy', state: status.state } };
    case 'ready': {
      const checks = readinessChecks(inputs);
      const ready =
        status.state === 'healthy' && checks.backends_available && checks.pool_healthy && checks.cache_healthy;
      return { status: ready ? 200 : 503, body: { ready, checks } };
    }
    case 'live':
      return { status: 200, body: { status: 'alive', state: status.state } };
  }
}
