/**
 * One DNS resolution of an upstream's `discovery`: the backends its records
 * name, or the error code Node gave. Goes through a `dns.promises.Resolver`
 * (c-ares, asynchronous), never `getaddrinfo` on libuv's thread pool.
 *
 * - `A`: the A and AAAA records of the name, every address on the port.
 * - `SRV`: each record's target resolved the same way; port, weight and
 *   priority come from the record.
 *
 * Node's `resolveSrv` gives no TTL, so an SRV answer's TTL is the shortest
 * TTL of its targets' address records.
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Discovery, DnsConfig } from '../config/schema.ts';
import { backendId, type BackendSpec } from '../protocol.ts';

/** The part of Node's resolver used here (tests pass a real one pointed at a local server). */
export type DnsLookup = Pick<Resolver, 'resolve4' | 'resolve6' | 'resolveSrv'>;

export type Answer =
  /** `ttlMs`: the shortest TTL of the records; null when none had one. */
  { ok: true; backends: BackendSpec[]; ttlMs: number | null } | { ok: false; code: string; message: string };

/** Node's resolver with the config's servers (none: the system's), its timeout per attempt, and 2 attempts. */
export function createLookup(dns: DnsConfig): DnsLookup {
  const resolver = new Resolver({ timeout: dns.timeout_ms, tries: 2 });
  if (dns.servers.length > 0) resolver.setServers(dns.servers);
  return resolver;
}

/** Answers that say "no such records", as opposed to a failure to ask. */
const NO_RECORDS = new Set(['ENODATA', 'ENOTFOUND']);

/** The highest weight a backend may have (the config's limit); SRV weights go up to 65535. */
const MAX_WEIGHT = 1000;

interface Address {
  address: string;
  ttl: number | null;
}
type Addresses = { ok: true; addresses: Address[]; code: string | null } | { ok: false; code: string; message: string };

const failure = (error: unknown): { ok: false; code: string; message: string } => {
  const e = error as NodeJS.ErrnoException;
  return { ok: false, code: e.code ?? 'EUNKNOWN', message: e.message };
};

/**
 * A and AAAA of `name`. A family without records is no failure (most names
 * have only one family), but a family that failed to answer is: a timeout
 * on AAAA must not drop the IPv6 addresses the last answer had.
 */
async function addressesOf(lookup: DnsLookup, name: string): Promise<Addresses> {
  if (isIP(name) !== 0) return { ok: true, addresses: [{ address: name, ttl: null }], code: null };
  const families = await Promise.allSettled([
    lookup.resolve4(name, { ttl: true }),
    lookup.resolve6(name, { ttl: true }),
  ]);
  const addresses: Address[] = [];
  let code: string | null = null;
  for (const family of families) {
    if (family.status === 'fulfilled') {
      for (const record of family.value) addresses.push({ address: record.address, ttl: record.ttl });
      continue;
    }
    const failed = failure(family.reason);
    if (!NO_RECORDS.has(failed.code)) return failed;
    // NXDOMAIN says more than "no records of this family".
    if (code !== 'ENOTFOUND') code = failed.code;
  }
  return { ok: true, addresses, code };
}

const shortest = (ttls: (number | null)[]): number | null => {
  const known = ttls.filter((t): t is number => t !== null);
  return known.length === 0 ? null : Math.min(...known) * 1000;
};

/** Sorted by id, one backend per `address:port` (the lowest priority wins): stable logs and diffs. */
function distinct(backends: BackendSpec[]): BackendSpec[] {
  const byId = new Map<string, BackendSpec>();
  for (const b of [...backends].sort((x, y) => (x.priority ?? 0) - (y.priority ?? 0))) {
    if (!byId.has(backendId(b))) byId.set(backendId(b), b);
  }
  return [...byId.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, b]) => b);
}

export async function resolveDiscovery(lookup: DnsLookup, upstream: string, discovery: Discovery): Promise<Answer> {
  return discovery.type === 'A' ? resolveA(lookup, upstream, discovery) : resolveSrv(lookup, upstream, discovery.dns);
}

async function resolveA(lookup: DnsLookup, upstream: string, discovery: Discovery): Promise<Answer> {
  const found = await addressesOf(lookup, discovery.dns);
  if (!found.ok) return found;
  if (found.addresses.length === 0) return noAddresses(found.code, discovery.dns);
  const port = discovery.port;
  // The config schema refuses type A without a port, so this is never reached.
  if (port === null) throw new Error(`discovery of ${discovery.dns}: type A needs a port`);
  const backends = found.addresses.map(({ address }) => ({ upstream, address, port, weight: 1, enabled: true }));
  return { ok: true, backends: distinct(backends), ttlMs: shortest(found.addresses.map((a) => a.ttl)) };
}

async function resolveSrv(lookup: DnsLookup, upstream: string, name: string): Promise<Answer> {
  let records: Awaited<ReturnType<DnsLookup['resolveSrv']>>;
  try {
    records = await lookup.resolveSrv(name);
  } catch (error) {
    return failure(error);
  }
  if (records.length === 0) return noAddresses('ENODATA', name);
  const targets = [...new Set(records.map((r) => r.name))];
  const resolved = await Promise.all(targets.map((target) => addressesOf(lookup, target)));
  const byTarget = new Map<string, Address[]>();
  const ttls: (number | null)[] = [];
  let code: string | null = null;
  for (const [index, found] of resolved.entries()) {
    // One target that failed to answer makes the whole answer unknown: keep the last set rather than guess.
    if (!found.ok) return found;
    byTarget.set(targets[index]!, found.addresses);
    ttls.push(...found.addresses.map((a) => a.ttl));
    code ??= found.code;
  }
  const backends = records.flatMap((record) =>
    (byTarget.get(record.name) ?? []).map(({ address }) => ({
      upstream,
      address,
      port: record.port,
      // Weight 0 ("hardly ever", RFC 2782) still gets the smallest share a backend can have.
      weight: Math.min(MAX_WEIGHT, Math.max(1, record.weight)),
      enabled: true,
      priority: record.priority,
    })),
  );
  if (backends.length === 0) return noAddresses(code, name);
  return { ok: true, backends: distinct(backends), ttlMs: shortest(ttls) };
}

/** An empty answer is a failure too: it keeps the last set, never empties the upstream. */
function noAddresses(code: string | null, name: string): Answer {
  const chosen = code ?? 'ENODATA';
  return { ok: false, code: chosen, message: `${name}: no addresses (${chosen})` };
}
