/**
 * The sockets the proxy serves, as one list whatever the config says:
 * `listeners`, or (without it) the one plain listener of
 * `proxy.listen_host` / `proxy.listen_port`, as before listeners existed.
 */
import type { Config, ListenerConfig } from './schema.ts';

export function listenSpecs(config: Pick<Config, 'proxy' | 'listeners'>): ListenerConfig[] {
  return (
    config.listeners ?? [
      {
        host: config.proxy.listen_host,
        port: config.proxy.listen_port,
        http2: false,
        max_concurrent_streams: 128,
        tls: null,
      },
    ]
  );
}

/** `127.0.0.1:8443 (TLS)`: how logs name a listener. */
export function describeListener(spec: Pick<ListenerConfig, 'host' | 'tls'>, port: number): string {
  return `${spec.host.includes(':') ? `[${spec.host}]` : spec.host}:${port}${spec.tls ? ' (TLS)' : ''}`;
}

/**
 * `listeners` and `proxy.listen_host`/`listen_port` both given: the schema
 * fills defaults, so only the document as written can tell.
 */
export function listenerConflicts(document: unknown): { path: string; value: unknown }[] {
  if (typeof document !== 'object' || document === null) return [];
  const { listeners, proxy } = document as { listeners?: unknown; proxy?: unknown };
  if (listeners === undefined || listeners === null || typeof proxy !== 'object' || proxy === null) return [];
  return (['listen_host', 'listen_port'] as const)
    .filter((key) => key in proxy)
    .map((key) => ({ path: `$.proxy.${key}`, value: (proxy as Record<string, unknown>)[key] }));
}

/**
 * Where the commands reach /health and /ready: the first plain listener
 * (nothing to verify), else the first TLS one. `ports`: the bound ones.
 */
export function probeAddress(
  config: Pick<Config, 'proxy' | 'listeners'>,
  ports?: readonly number[],
): { scheme: 'http' | 'https'; host: string; port: number } {
  const specs = listenSpecs(config);
  const index = Math.max(
    0,
    specs.findIndex((spec) => !spec.tls),
  );
  const spec = specs[index]!;
  return { scheme: spec.tls ? 'https' : 'http', host: spec.host, port: ports?.[index] ?? spec.port };
}
