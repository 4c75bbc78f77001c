/**
 * What a reload may change while running, and what needs a restart: the
 * listening sockets, the thread count, the PID file, the hooks module, the
 * admin listener, logging and the cache stay as they are until the process
 * restarts. A listener's certificates, SNI entries and TLS settings apply
 * live; its address, and whether it is TLS at all, need a restart.
 */
import type { Config } from './schema.ts';
import { listenSpecs } from './listeners.ts';

// require_healthy_backends decides how a start ends; a reload happens once started, so only a restart applies it.
const restartOnlyProxyKeys = [
  'listen_host',
  'listen_port',
  'workers',
  'pid_file',
  'request_hooks',
  'fast_path',
  'require_healthy_backends',
] as const;

export interface ReloadPlan {
  /** The new config, with the restart-only settings kept as they run now. */
  effective: Config;
  /** JSON paths of settings that changed but need a restart, e.g. `$.proxy.listen_port`. */
  needsRestart: string[];
}

export function planReload(running: Config, next: Config): ReloadPlan {
  const needsRestart: string[] = [];
  const proxy = { ...next.proxy };
  for (const key of restartOnlyProxyKeys) {
    if (JSON.stringify(next.proxy[key]) !== JSON.stringify(running.proxy[key])) needsRestart.push(`$.proxy.${key}`);
    (proxy as Record<string, unknown>)[key] = running.proxy[key];
  }
  // The sockets, not the certificates: which addresses, which of them speak TLS, and their HTTP/2 settings.
  const sockets = (config: Config) =>
    listenSpecs(config).map((spec) => [
      spec.host,
      spec.port,
      spec.tls !== null,
      spec.http2,
      spec.max_concurrent_streams,
    ]);
  const listenersMoved = JSON.stringify(sockets(next)) !== JSON.stringify(sockets(running));
  if (listenersMoved && (next.listeners !== null || running.listeners !== null)) needsRestart.push('$.listeners');
  const listeners = listenersMoved ? running.listeners : next.listeners;
  // The cache's store is opened once per thread: a new path or size needs a restart (a hot one keeps the entries).
  for (const section of ['admin', 'log', 'access_log', 'cache'] as const) {
    if (JSON.stringify(next[section]) !== JSON.stringify(running[section])) needsRestart.push(`$.${section}`);
  }
  const kept = { admin: running.admin, log: running.log, access_log: running.access_log, cache: running.cache };
  return { effective: { ...next, proxy, listeners, ...kept }, needsRestart };
}
