/**
 * The ways a request can enter sluice, for suites that must hold in each:
 *   `plain`  the config as the suite wrote it;
 *   `hooks`  the same with `proxy.request_hooks` set to hooks that do nothing;
 *   `route`  the same backends as a named upstream, reached through a route
 *            that takes every request (top-level `backends` left empty, so a
 *            request that missed the route would get a 503, not the backend);
 *   `llhttp` the same with `proxy.fast_path: false`: every request is read by
 *            Node's parser, then served by the same core.
 * The health_check section stays top-level: an upstream inherits it.
 */
import { fileURLToPath } from 'node:url';
import type { SluiceProcess } from './sluice-process.ts';

export const entries = ['plain', 'hooks', 'route', 'llhttp'] as const;
export type Entry = (typeof entries)[number];

export const emptyHooks = fileURLToPath(new URL('../fixtures/empty-hooks.ts', import.meta.url));

/** The upstream and route the `route` entry moves the backends to. */
export const ROUTED_UPSTREAM = 'app';
export const ROUTE_NAME = 'all';

interface EnterableConfig {
  proxy: Record<string, unknown>;
  backends: unknown[];
  upstreams?: never;
  routes?: never;
}

/** `config` (a testConfig(...) object, maybe with more sections) as `entry` has it. */
export function enter<C extends EnterableConfig>(
  config: C,
  entry: Entry,
): C & { upstreams?: Record<string, { backends: unknown[] }>; routes?: unknown[] } {
  switch (entry) {
    case 'plain':
      return config;
    case 'hooks':
      if ('request_hooks' in config.proxy) throw new Error('enter(hooks): the config has request_hooks already');
      return { ...config, proxy: { ...config.proxy, request_hooks: emptyHooks } };
    case 'llhttp':
      return { ...config, proxy: { ...config.proxy, fast_path: false } };
    case 'route':
      return {
        ...config,
        backends: [],
        upstreams: { [ROUTED_UPSTREAM]: { backends: config.backends } },
        routes: [{ name: ROUTE_NAME, match: { path_prefix: '/' }, upstream: ROUTED_UPSTREAM }],
      };
  }
}

/**
 * Resolves once `sluice` serves the entry it was started for. With hooks:
 * once every listener thread loaded them (a debug line, so start sluice with
 * `--log-level debug`); otherwise the suite would silently test `plain` again.
 * A `route` entry needs no check: missing the route would answer 503.
 */
export async function entered(sluice: SluiceProcess, entry: Entry, listeners = 1): Promise<void> {
  if (entry !== 'hooks') return;
  for (let listener = 0; listener < listeners; listener++) {
    await sluice.waitForLog((l) => l['event'] === 'hooks.loaded' && l['listener'] === listener);
  }
}
