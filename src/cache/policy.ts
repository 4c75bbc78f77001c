/**
 * The freshness rules of RFC 9111 (as a shared cache) and RFC 5861, from
 * http-cache-semantics rather than written again: what may be stored, how
 * long it is fresh (s-maxage, max-age, Expires, heuristics only for the
 * statuses RFC 9111 allows), what revalidates it and what Age says. This
 * file only adapts sluice's header lists to the library's objects and adds
 * the rules the library leaves to the cache.
 */
import CachePolicy from 'http-cache-semantics';

export type Policy = CachePolicy;
export type PolicyRequest = CachePolicy.HttpRequest & { headers: Record<string, string> };

/** `[name, value, …]` → lowercase names, repeated headers joined with `, ` (RFC 9110 §5.3). */
export function headerObject(flat: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    const value = flat[i + 1]!;
    out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
  }
  return out;
}

export function policyRequest(method: string, target: string, headers: Record<string, string>): PolicyRequest {
  return { method, url: target, headers };
}

export function newPolicy(request: PolicyRequest, status: number, headers: Record<string, string>): Policy {
  return new CachePolicy(request, { status, headers }, { shared: true });
}

export function restoredPolicy(object: CachePolicy.CachePolicyObject): Policy {
  return CachePolicy.fromObject(object);
}

/**
 * Stored at all: what the library allows a shared cache, and besides a
 * response without Set-Cookie (as nginx, which does not cache those
 * unless told to: one user's cookie must not reach another) and without
 * `Vary: *` (never served from a cache). Partial content is not understood.
 */
export function mayStore(policy: Policy, status: number, headers: Record<string, string>): boolean {
  if (status === 206 || headers['set-cookie'] !== undefined) return false;
  const vary = headers.vary;
  if (vary?.split(',').some((name) => name.trim() === '*')) return false;
  return policy.storable();
}

/** The request headers a response varies on, lowercase and sorted. */
export function varyNames(headers: Record<string, string>): string[] {
  const vary = headers.vary;
  if (vary === undefined) return [];
  return [
    ...new Set(
      vary
        .split(',')
        .map((name) => name.trim().toLowerCase())
        .filter((name) => name !== ''),
    ),
  ].sort();
}

/** Age in whole seconds, as the Age header carries it. */
export function ageSeconds(policy: Policy): number {
  return Math.max(0, Math.floor(policy.age()));
}

/** RFC 5861 §4: a stale response may answer an error for `stale-if-error` seconds past its freshness. */
export function allowsStaleIfError(policy: Policy): boolean {
  const seconds = Number(policy.toObject().rescc['stale-if-error']);
  return seconds > 0 && policy.maxAge() + seconds > policy.age();
}
