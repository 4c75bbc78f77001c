/**
 * The JSON documents tests read back from sluice, typed as far as tests read
 * them. `JSON.parse` answers `any`; a cast to one of these at the parse site
 * keeps the assertions after it type-checked. The shapes are the ones
 * src/listener/endpoints.ts and src/admin/status.ts write.
 */

/** The body of /ready (the seed's). */
export interface ReadyDocument {
  ready: boolean;
  checks: { backends_available: boolean; pool_healthy: boolean; cache_healthy: boolean };
}

/** The body of /health and /live. */
export interface HealthDocument {
  status: string;
  state: string;
}

/** One certificate in the admin /status document. */
export interface CertificateEntry {
  name: string;
  listener: string;
  subject: string;
  sans: string[];
  not_after: string;
  days_left: number;
}

/** The admin /status document; fields a test only compares whole stay `unknown`. */
export interface StatusDocument {
  state: string;
  pid: number;
  started_at: string;
  uptime_ms: number;
  listeners: unknown[];
  certificates: CertificateEntry[];
  history: { at: string; from: string; to: string; event: string }[];
  backends: unknown[];
  upstreams: unknown[];
  connections: { active: number; rejected: number };
  workers: { id: number; kind: string; restarts: number; alive: boolean }[];
  last_reload: { ok: boolean; [key: string]: unknown } | null;
  last_restart: unknown;
  /** With a `cache` in the config. */
  cache?: CacheStatus;
}

/** The `cache` part of /status (src/cache/admin-cache.ts). */
export interface CacheStatus {
  path: string;
  available: boolean;
  size_bytes: number;
  max_size_bytes: number;
  entries: number;
  /** Null before any request looked the cache up. */
  hit_ratio: number | null;
  requests: Record<'hit' | 'miss' | 'stale' | 'bypass' | 'revalidated', number>;
  evictions: number;
}

/** The body the admin API answers a request without a valid token with. */
export interface UnauthorizedDocument {
  hint: string;
}
