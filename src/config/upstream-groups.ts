/**
 * The upstream groups a config describes, resolved: top-level `backends`,
 * `health_check` and `load_balancing` are the upstream named `default`; an
 * upstream in `upstreams` takes the top-level sections for every key it
 * leaves out. Every other part of sluice reads groups through here, so that
 * the inheritance rule exists once.
 */
import { DEFAULT_UPSTREAM, type BackendSpec, type PoolSnapshot, type UpstreamTls } from '../protocol.ts';
import type { Config, Discovery, HealthCheck, LoadBalancing } from './schema.ts';

export { DEFAULT_UPSTREAM };

export interface UpstreamGroup {
  name: string;
  /** The configured backends (none when they come from DNS). */
  backends: BackendSpec[];
  /** Where its backends come from when they are not listed; null for a fixed list. */
  discovery: Discovery | null;
  health_check: HealthCheck;
  load_balancing: LoadBalancing;
  /** TLS to its backends that have no `tls` of their own (and to those DNS gives); null: plain. */
  tls: UpstreamTls | null;
}

/** Every group, `default` first (it exists even when empty: requests without routes go there). */
export function upstreamGroups(config: Config): UpstreamGroup[] {
  // Top-level backends and a declared `default` are never both in a file, but backends added at run
  // time (admin API, embedding API) join the top-level list: they belong to `default` either way.
  const declared = config.upstreams[DEFAULT_UPSTREAM];
  const fallback = { backends: [], discovery: null, health_check: {}, load_balancing: {}, tls: null };
  const own = resolve(config, DEFAULT_UPSTREAM, declared ?? fallback);
  own.backends.push(...config.backends.map((b) => ({ ...b, upstream: DEFAULT_UPSTREAM, tls: b.tls ?? own.tls })));
  const groups: UpstreamGroup[] = [own];
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    if (name !== DEFAULT_UPSTREAM) groups.push(resolve(config, name, upstream));
  }
  return groups;
}

function resolve(config: Config, name: string, upstream: Config['upstreams'][string]): UpstreamGroup {
  return {
    name,
    backends: upstream.backends.map((b) => ({ ...b, upstream: name, tls: b.tls ?? upstream.tls })),
    discovery: upstream.discovery,
    health_check: { ...config.health_check, ...definedOnly(upstream.health_check) },
    load_balancing: { ...config.load_balancing, ...definedOnly(upstream.load_balancing) },
    tls: upstream.tls,
  };
}

function definedOnly<T extends object>(partial: T): Partial<T> {
  return Object.fromEntries(Object.entries(partial).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/** Every backend of every group, each tagged with its upstream. */
export function allBackends(config: Config): BackendSpec[] {
  return upstreamGroups(config).flatMap((group) => group.backends);
}

/** The group a backend belongs to (`default` for one added at run time without a name). */
export function groupOf(config: Config, upstream: string | undefined): UpstreamGroup | undefined {
  const name = upstream ?? DEFAULT_UPSTREAM;
  return upstreamGroups(config).find((group) => group.name === name);
}

/**
 * Whether the group has backends to wait for: listed ones, or a DNS name
 * (which may not have answered yet, but will be resolved).
 */
export const expectsBackends = (group: Pick<UpstreamGroup, 'backends' | 'discovery'>): boolean =>
  group.backends.length > 0 || group.discovery !== null;

/** The groups whose backends come from DNS, by name. */
export function discoveredGroups(config: Config): Map<string, Discovery> {
  const found = new Map<string, Discovery>();
  for (const group of upstreamGroups(config)) if (group.discovery) found.set(group.name, group.discovery);
  return found;
}

/** The upstreams requests can reach: those routes name, or `default` when there are no routes. */
export function routedUpstreams(config: Config): string[] {
  if (config.routes === null) return [DEFAULT_UPSTREAM];
  return [...new Set(config.routes.flatMap((route) => (route.upstream === null ? [] : [route.upstream])))];
}

/** Selectable backends per upstream in a snapshot. */
function selectableByUpstream(snapshot: PoolSnapshot | undefined): Map<string, number> {
  const counts = new Map<string, number>();
  for (const b of snapshot?.backends ?? []) if (b.selectable) counts.set(b.upstream, (counts.get(b.upstream) ?? 0) + 1);
  return counts;
}

/**
 * What start-up waits for: every upstream requests can reach that has
 * backends has one to send them to. An upstream with no backends at all
 * has nothing to wait for (its requests get 503), so it does not hold
 * start-up; but with no backend anywhere, the proxy cannot become healthy.
 * An upstream from DNS that has not resolved yet does hold it: its backends
 * are on their way.
 * Returns how many selectable backends those upstreams have, or 0 while
 * any of them has none.
 */
export function startupBackends(config: Config, snapshot: PoolSnapshot | undefined): number {
  const counts = selectableByUpstream(snapshot);
  const members = new Map<string, number>();
  for (const b of snapshot?.backends ?? []) members.set(b.upstream, (members.get(b.upstream) ?? 0) + 1);
  const discovered = discoveredGroups(config);
  let total = 0;
  for (const name of routedUpstreams(config)) {
    if ((members.get(name) ?? 0) === 0 && !discovered.has(name)) continue;
    const count = counts.get(name) ?? 0;
    if (count === 0) return 0;
    total += count;
  }
  return total;
}

/** What `/ready` says of backends: every upstream requests can reach has its `min_healthy`. */
export function backendsAvailable(config: Config, snapshot: PoolSnapshot | undefined): boolean {
  const counts = selectableByUpstream(snapshot);
  const groups = new Map(upstreamGroups(config).map((group) => [group.name, group]));
  return routedUpstreams(config).every(
    (name) => (counts.get(name) ?? 0) >= (groups.get(name)?.health_check.min_healthy ?? 1),
  );
}
