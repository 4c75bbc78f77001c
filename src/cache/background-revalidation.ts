/**
 * stale-while-revalidate (RFC 5861 §3): the stale entry was served; one
 * revalidation runs in the background, once across threads (the coalescing
 * lock, on its own key). It is not tied to a client connection, so it is a
 * plain undici request to a backend of the route's upstream, with the
 * route's prefix strip and request header edits; a 304 refreshes the entry,
 * a storable response replaces it.
 */
import { clientResponseRawHeaders, HOP_BY_HOP_NAMES } from '../listener/headers.ts';
import type { Upstreams } from '../listener/upstreams.ts';
import { editFlatHeaders } from '../routing/header-edits.ts';
import { targetAfterStrip, type Route } from '../routing/route-table.ts';
import { refreshedMeta } from './cache-step.ts';
import { storedHeaders, type EntryMeta } from './entry.ts';
import { headerObject, mayStore, newPolicy, policyRequest, restoredPolicy, varyNames, type Policy } from './policy.ts';
import { encodeEntry, type StoredEntry } from './store.ts';
import type { CacheThread } from './cache-thread.ts';
import { variantKey } from './keys.ts';

export interface BackgroundRevalidation {
  key: string;
  url: string;
  target: string;
  entry: StoredEntry;
  policy: Policy;
  headers: Record<string, string>;
  route: Route | undefined;
  upstreams: Upstreams;
}

const UNKEYED = Object.freeze({ headers: {}, socket: {} });
const HOP = new Set<string>(HOP_BY_HOP_NAMES);

export async function revalidateInBackground(cache: CacheThread, job: BackgroundRevalidation): Promise<void> {
  const lock = `${job.key}\u0000revalidating`;
  if (!(await cache.coalescer.acquire(lock, cache.lockTimeoutMs))) return;
  try {
    const backend = job.upstreams.pick(UNKEYED);
    if (!backend) return;
    const policyReq = policyRequest('GET', job.target, job.headers);
    // Another thread may have revalidated the entry since this one read it (a thread's read snapshot lags the
    // store): read it again, and if it is fresh now, a second request would only repeat the first.
    const store = cache.store;
    store?.refresh();
    const current = store?.get(job.key);
    if (current && !restoredPolicy(current.meta.policy).evaluateRequest(policyReq).revalidation) return;
    let flat: string[] = [];
    for (const [name, value] of Object.entries(job.policy.revalidationHeaders(policyReq))) {
      if (typeof value === 'string' && !HOP.has(name)) flat.push(name, value);
    }
    if (job.route?.requestHeaders) flat = editFlatHeaders(flat, job.route.requestHeaders);
    const target = job.route?.stripPrefix ? targetAfterStrip(job.target, job.route.stripPrefix) : job.target;
    const host = backend.address.includes(':') ? `[${backend.address}]` : backend.address;
    // undici is loaded at the first background revalidation: a listener thread that never makes one never loads it.
    const { request } = await import('undici');
    const response = await request(`http://${host}:${backend.port}${target}`, {
      method: 'GET',
      headers: flat,
      headersTimeout: cache.upstreamTimeoutMs,
      bodyTimeout: cache.upstreamTimeoutMs,
    });
    const raw = rawHeaders(response.headers);
    const headers = headerObject(raw);
    if (response.statusCode === 304) {
      await response.body.dump();
      const { policy, modified } = job.policy.revalidatedPolicy(policyReq, { status: 304, headers });
      if (modified) return;
      cache.count('revalidated');
      cache.recommit(job.url, job.key, refreshedMeta(job.entry.meta, policy, headers), job.entry.body);
      return;
    }
    const policy = newPolicy(policyReq, response.statusCode, headers);
    if (!mayStore(policy, response.statusCode, headers)) {
      await response.body.dump();
      return;
    }
    const body = Buffer.from(await response.body.arrayBuffer());
    if (body.length > cache.maxObjectBytes) return;
    const vary = varyNames(headers);
    const meta: EntryMeta = {
      policy: policy.toObject(),
      status: response.statusCode,
      headers: storedHeaders(clientResponseRawHeaders(raw)),
      framing: 'length',
    };
    cache.commit(job.url, vary, variantKey(job.url, vary, job.headers), encodeEntry(meta, body), undefined);
  } catch {
    // The stale entry stays; the next request after its stale-while-revalidate window revalidates in line.
  } finally {
    cache.coalescer.release(lock, false);
  }
}

function rawHeaders(headers: Record<string, string | string[] | undefined>): string[] {
  const flat: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) flat.push(name, one);
  }
  return flat;
}
