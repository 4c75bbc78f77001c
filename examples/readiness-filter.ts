// The seed's "Readiness Endpoint" as a request filter. Load it with the
// config key `proxy.request_hooks` (or the `request_hooks` init option): it
// runs in every listener thread and answers /readyz without any upstream.
import type { RequestFilterResult, Session } from 'sluice';

export function requestFilter(session: Session): RequestFilterResult | undefined {
  if (session.path !== '/readyz') return undefined;
  const proxy = session.proxy;

  // Check all dependencies.
  const checks = {
    backends_available: proxy.hasHealthyBackends(),
    pool_healthy: proxy.pool.isHealthy(),
    cache_healthy: proxy.cache.isHealthy(),
  };

  const allHealthy = checks.backends_available && checks.pool_healthy && checks.cache_healthy;

  const body = JSON.stringify({ ready: allHealthy, checks });

  return {
    respond: {
      status: allHealthy ? 200 : 503,
      headers: { 'content-type': 'application/json' },
      body,
    },
  };
}
