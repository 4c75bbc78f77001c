/**
 * The cache step of one request on a caching route (fast path), as a tap on
 * its exchange (exchange-tap.ts):
 *
 * - GET/HEAD: look up the URL's variant; fresh → hit. Stale within
 *   stale-while-revalidate → served, one background revalidation. Stale
 *   otherwise → a conditional request; a 304 refreshes the entry. No entry
 *   (GET) → the coalescing lock: one upstream request, the others wait.
 * - The upstream's response streams to the client as without a cache; a
 *   storable one is collected on the way (up to max_object_mb) and
 *   committed only once complete.
 * - An upstream error or 5xx is answered from a stale entry that allows
 *   stale-if-error.
 * - Unsafe methods: a success invalidates the URL and its Location and
 *   Content-Location (same host).
 *
 * Every response of the route carries Cache-Status (RFC 9211).
 */
import type { RequestHead } from '../listener/http1/request-head.ts';
import type { ResponseHead } from '../listener/http1/response-head.ts';
import { clientResponseRawHeaders } from '../listener/headers.ts';
import { editFlatHeaders } from '../routing/header-edits.ts';
import type { Route } from '../routing/route-table.ts';
import type { Upstreams } from '../listener/upstreams.ts';
import { cachedHead, storedHeaders, type EntryMeta } from './entry.ts';
import type { CachedExchange, ExchangeTap } from './exchange-tap.ts';
import {
  ageSeconds,
  allowsStaleIfError,
  headerObject,
  mayStore,
  newPolicy,
  policyRequest,
  restoredPolicy,
  varyNames,
  type Policy,
  type PolicyRequest,
} from './policy.ts';
import { encodeEntry, entryBody, entryMeta, entryStamp, MAX_KEY_BYTES, type StoredEntry, type Vary } from './store.ts';
import { joinedRequestHeader } from './request-headers.ts';
import type { CacheThread } from './cache-thread.ts';
import { cacheUrl, invalidatedUrls, variantKey } from './keys.ts';

const UNSAFE = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);
const CONDITIONAL = new Set(['if-none-match', 'if-modified-since']);
/** Request headers that take a hit through the full rules (lookUp) rather than the common path. */
const FULL_RULES = ['cache-control', 'pragma', 'if-none-match', 'if-modified-since'];

type Mode = 'miss' | 'revalidate' | 'bypass' | 'invalidate' | 'method';

export class CacheStep implements ExchangeTap {
  readonly #cache: CacheThread;
  readonly #route: Route | undefined;
  readonly #upstreams: Upstreams;
  readonly #method: string;
  readonly #target: string;
  readonly #url: string;
  /** The head, read only while `begin` runs (its bytes may not outlive the read that brought it). */
  #head: RequestHead | undefined;
  #headers: Record<string, string> | undefined;
  #request: PolicyRequest | undefined;
  #exchange: CachedExchange | undefined;
  #mode: Mode = 'miss';
  /** A stale entry: what a 304 refreshes and stale-if-error serves. */
  #stale: { key: string; entry: StoredEntry; policy: Policy } | undefined;
  #revalidationHeaders: Record<string, string> | undefined;
  /** The coalescing lock this request holds. */
  #lock: string | undefined;
  /** Collecting the response for the store. */
  #collect: { policy: Policy; meta: EntryMeta; vary: Vary; key: string; chunks: Buffer[]; bytes: number } | undefined;
  #cacheStatus = 'sluice; fwd=miss';
  /** The store's read snapshot was renewed for this request (before its miss). */
  #refreshed = false;
  #ended = false;

  constructor(cache: CacheThread, head: RequestHead, proto: string, route: Route | undefined, upstreams: Upstreams) {
    this.#cache = cache;
    this.#route = route;
    this.#upstreams = upstreams;
    this.#method = head.method;
    this.#target = head.target;
    this.#url = cacheUrl(proto, head.host, head.target);
    this.#head = head;
  }

  /** The exchange, given by begin: every other step runs after it. */
  get #exchangeBegun(): CachedExchange {
    if (!this.#exchange) throw new Error('the cache step has not begun');
    return this.#exchange;
  }

  /** The request's headers, read by begin before any full look-up (a fresh hit never reads them). */
  get #requestHeaders(): Record<string, string> {
    if (!this.#headers) throw new Error('the cache step has not read the request headers');
    return this.#headers;
  }

  /** The request as http-cache-semantics sees it, made with the headers. */
  get #policyRequest(): PolicyRequest {
    if (!this.#request) throw new Error('the cache step has not read the request headers');
    return this.#request;
  }

  begin(exchange: CachedExchange): void {
    this.#exchange = exchange;
    const cache = this.#cache;
    const head = this.#head;
    if (!head) throw new Error('a cache step begins once');
    this.#head = undefined;
    if (UNSAFE.has(this.#method)) return this.#forward('invalidate', 'sluice; fwd=method', 'bypass');
    if (this.#method !== 'GET' && this.#method !== 'HEAD')
      return this.#forward('method', 'sluice; fwd=method', 'bypass');
    if (!cache.healthy || tooLong(this.#url)) return this.#forward('bypass', 'sluice; fwd=bypass', 'bypass');
    if (this.#freshHit(head)) return;
    // Read now: the head's bytes may not outlive this read.
    this.#headers = headerObject(head.rawHeaders);
    this.#request = policyRequest('GET', this.#target, this.#headers);
    this.#lookUp(true);
  }

  /**
   * The common hit, without the library's per-request work: a request
   * without Cache-Control or Pragma (nothing it says changes the answer),
   * and an entry fresh by the freshness this thread computed when it first
   * read that version of it. Anything else takes the full rules (lookUp).
   */
  #freshHit(head: RequestHead): boolean {
    // Cache-Control or Pragma may ask for more than a fresh entry; validators may make it a 304.
    for (const name of FULL_RULES) if (head.find(name) !== undefined) return false;
    const store = this.#cache.store;
    if (!store) return false;
    let vary: Vary | undefined;
    let value: Buffer | undefined;
    let key: string;
    try {
      vary = store.varyOf(this.#url);
      if (vary === undefined || vary === '*') return false;
      key = variantKey(this.#url, vary, (name) => joinedRequestHeader(head, name));
      value = store.getFast(key);
    } catch {
      return false;
    }
    if (value === undefined) return false;
    const hotKey = `${this.#route?.index ?? -1}\u0000${key}`;
    const stamp = entryStamp(value);
    const hot =
      this.#cache.hot.get(hotKey, stamp) ?? this.#cache.hot.make(hotKey, stamp, entryMeta(value), this.#route);
    const now = Date.now();
    if (now >= hot.freshUntil) return false;
    this.#cache.count('hit');
    const age = Math.max(0, Math.floor(hot.ageThen + (now - hot.madeAt) / 1000));
    const meta = hot.meta;
    const body = entryBody(value);
    let text = `${hot.prefix}Age: ${age}\r\nCache-Status: sluice; hit\r\n`;
    if (meta.status !== 204 && meta.status !== 304)
      text += meta.framing === 'chunked' ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${body.length}\r\n`;
    // The body lies in lmdb-js's reused buffer: the exchange copies it into the response before any other read.
    this.#exchangeBegun.serveCached(meta.status, text, body);
    if (now - hot.touchedAt >= 1000) {
      hot.touchedAt = now;
      store.touch(key, now);
    }
    return true;
  }

  /** Serve what the store holds, or go upstream; `coalesce`: a miss may wait for another's request first. */
  #lookUp(coalesce: boolean): void {
    const store = this.#cache.store;
    if (!store) return this.#forward('bypass', 'sluice; fwd=bypass', 'bypass');
    let vary: Vary | undefined;
    let key: string;
    let entry: StoredEntry | undefined;
    try {
      vary = store.varyOf(this.#url);
      key = variantKey(this.#url, vary === '*' ? [] : (vary ?? []), this.#requestHeaders);
      entry = vary === undefined || vary === '*' ? undefined : store.get(key);
    } catch {
      return this.#forward('bypass', 'sluice; fwd=bypass', 'bypass');
    }
    if (entry) {
      const policy = restoredPolicy(entry.meta.policy);
      const verdict = policy.evaluateRequest(this.#policyRequest);
      if (verdict.response) {
        store.touch(key);
        if (!verdict.revalidation) {
          this.#cache.count('hit');
          return this.#serve(entry, policy, 'sluice; hit');
        }
        // stale-while-revalidate: the stale entry now, one revalidation in the background.
        this.#cache.count('stale');
        this.#cache.revalidateInBackground(
          key,
          this.#url,
          this.#target,
          entry,
          policy,
          this.#requestHeaders,
          this.#route,
          this.#upstreams,
        );
        return this.#serve(entry, policy, 'sluice; hit; detail=stale-while-revalidate');
      }
      this.#stale = { key, entry, policy };
      if (hasValidator(entry.meta)) {
        this.#revalidationHeaders = policy.revalidationHeaders(this.#policyRequest) as Record<string, string>;
        return this.#forward('revalidate', 'sluice; fwd=stale', undefined);
      }
    }
    // lmdb-js renews a thread's read snapshot on a timer, so it can lag another thread's commit by a
    // moment: before a miss (and a lock taken in a fresh write transaction), look once more, up to date.
    if (!this.#refreshed) {
      this.#refreshed = true;
      store.refresh();
      return this.#lookUp(coalesce);
    }
    if (!coalesce) return this.#forward('miss', 'sluice; fwd=miss', 'miss');
    // HEAD is not stored, so it takes no lock; it waits for a GET's, whose entry will answer it.
    if (this.#method !== 'GET')
      return this.#cache.coalescer.isLocked(key)
        ? void this.#awaitLock(key)
        : this.#forward('miss', 'sluice; fwd=miss', 'miss');
    void this.#coalesce(key);
  }

  async #coalesce(key: string): Promise<void> {
    const cache = this.#cache;
    // Taking the lock is a write transaction (asynchronous): the head must outlive this read.
    this.#exchangeBegun.detachHead();
    const won = await cache.coalescer.acquire(key, cache.lockTimeoutMs);
    if (this.#exchangeBegun.done) {
      if (won) cache.coalescer.release(key, false);
      return;
    }
    if (won) {
      this.#lock = key;
      // Another request may have stored the entry between this one's look and its lock: look again.
      this.#refreshed = false;
      this.#lookUp(false);
      return;
    }
    await this.#awaitLock(key);
  }

  /** Another request holds the lock on `key`: wait for it, then look again (a hit) or go upstream. */
  async #awaitLock(key: string): Promise<void> {
    const cache = this.#cache;
    this.#exchangeBegun.detachHead();
    const end = await cache.coalescer.wait(key, cache.lockTimeoutMs);
    if (this.#exchangeBegun.done) return;
    // Stored: a hit now (or, if it is not one for this request, a miss of its own). Otherwise go upstream.
    // Reads must see the commit now, not at the thread's next event turn.
    cache.store?.refresh();
    if (end !== 'timeout') {
      this.#lookUp(false);
      return;
    }
    this.#forward('miss', 'sluice; fwd=miss', 'miss');
  }

  #serve(entry: StoredEntry, policy: Policy, cacheStatus: string): void {
    const meta = entry.meta;
    const edits = this.#route?.responseHeaders;
    const headers = edits ? editFlatHeaders(meta.headers, edits) : meta.headers;
    // The client's own validators match the entry: 304, as nginx answers them from its cache.
    if (meta.status === 200 && this.#headers !== undefined && notModified(this.#headers, meta.headers)) {
      const head = cachedHead({ ...meta, status: 304 }, headers, 0, ageSeconds(policy), cacheStatus);
      return this.#exchangeBegun.serveCached(304, head, EMPTY);
    }
    const head = cachedHead(meta, headers, entry.body.length, ageSeconds(policy), cacheStatus);
    this.#exchangeBegun.serveCached(meta.status, head, entry.body);
  }

  #forward(mode: Mode, cacheStatus: string, counted: 'miss' | 'bypass' | undefined): void {
    this.#mode = mode;
    this.#cacheStatus = cacheStatus;
    if (counted) this.#cache.count(counted);
    this.#exchangeBegun.goUpstream();
  }

  upstreamHeaders(routed: () => string[]): string[] | undefined {
    const conditional = this.#revalidationHeaders;
    if (this.#mode !== 'revalidate' || conditional === undefined) return undefined;
    const flat = routed();
    const out: string[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      if (CONDITIONAL.has(flat[i]!.toLowerCase())) continue;
      out.push(flat[i]!, flat[i + 1]!);
    }
    for (const name of CONDITIONAL) if (conditional[name] !== undefined) out.push(name, conditional[name]);
    return out;
  }

  answersInstead(head: ResponseHead): boolean {
    const stale = this.#stale;
    if (this.#mode === 'invalidate') {
      if (head.status >= 200 && head.status < 400) this.#invalidate(head);
      return false;
    }
    if (stale && this.#mode === 'revalidate' && head.status === 304) {
      const response = { status: 304, headers: headerObject(head.rawHeaders) };
      const { policy, modified } = stale.policy.revalidatedPolicy(this.#policyRequest, response);
      this.#cache.count('revalidated');
      const meta = modified ? stale.entry.meta : refreshedMeta(stale.entry.meta, policy, response.headers);
      if (!modified) this.#cache.recommit(this.#url, stale.key, meta, stale.entry.body);
      this.#serve({ ...stale.entry, meta }, policy, 'sluice; fwd=stale; fwd-status=304');
      return true;
    }
    if (stale && head.status >= 500 && allowsStaleIfError(stale.policy)) {
      this.#cache.count('stale');
      this.#serve(stale.entry, stale.policy, `sluice; fwd=stale; fwd-status=${head.status}; detail=stale-if-error`);
      return true;
    }
    if (this.#mode === 'revalidate') {
      this.#cache.count('miss');
      this.#cacheStatus = `sluice; fwd=stale; fwd-status=${head.status}`;
    }
    if (this.#mode === 'miss' || this.#mode === 'revalidate') this.#startCollecting(head);
    return false;
  }

  answersFailure(status: number): boolean {
    const stale = this.#stale;
    if (!stale || status < 500 || !allowsStaleIfError(stale.policy)) return false;
    this.#cache.count('stale');
    this.#serve(stale.entry, stale.policy, `sluice; fwd=stale; detail=stale-if-error`);
    return true;
  }

  #startCollecting(head: ResponseHead): void {
    if (this.#method !== 'GET') return;
    const headers = headerObject(head.rawHeaders);
    const policy = newPolicy(this.#policyRequest, head.status, headers);
    if (!mayStore(policy, head.status, headers)) return;
    const framing = head.framing;
    const maxBytes = this.#cache.maxObjectBytes;
    if (framing.type === 'length' && framing.length > maxBytes) return;
    const vary = varyNames(headers);
    const key = variantKey(this.#url, vary, this.#requestHeaders);
    if (Buffer.byteLength(key) > MAX_KEY_BYTES) return;
    const meta: EntryMeta = {
      policy: policy.toObject(),
      status: head.status,
      headers: storedHeaders(clientResponseRawHeaders(head.rawHeaders)),
      framing: framing.type === 'chunked' ? 'chunked' : 'length',
    };
    this.#collect = { policy, meta, vary, key, chunks: [], bytes: 0 };
    this.#cacheStatus += '; stored';
  }

  clientHeaders(head: ResponseHead, replaced: readonly string[] | undefined): string[] {
    let flat: string[];
    if (replaced) flat = [...replaced];
    else {
      flat = clientResponseRawHeaders(head.rawHeaders);
      const edits = this.#route?.responseHeaders;
      if (edits) flat = editFlatHeaders(flat, edits);
    }
    flat.push('Cache-Status', this.#cacheStatus);
    return flat;
  }

  body(bytes: Buffer): void {
    const collect = this.#collect;
    if (!collect || bytes.length === 0) return;
    collect.bytes += bytes.length;
    // Too large for the store, or past what this thread may hold of responses being collected:
    // it streams on, and is not kept.
    if (collect.bytes > this.#cache.maxObjectBytes || !this.#cache.hold(bytes.length)) return this.#dropCollected();
    collect.chunks.push(Buffer.from(bytes));
  }

  #dropCollected(): void {
    const collect = this.#collect;
    this.#collect = undefined;
    if (collect) this.#cache.unhold(collect.chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  }

  cacheStatusLine(): string {
    return `Cache-Status: ${this.#cacheStatus}\r\n`;
  }

  complete(): void {
    const collect = this.#collect;
    this.#collect = undefined;
    if (!collect) return;
    const lock = this.#lock;
    this.#lock = undefined;
    const value = encodeEntry(collect.meta, Buffer.concat(collect.chunks, collect.bytes));
    this.#cache.unhold(collect.bytes);
    this.#cache.commit(this.#url, collect.vary, collect.key, value, lock);
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#dropCollected();
    if (this.#lock !== undefined) this.#cache.coalescer.release(this.#lock, false);
    this.#lock = undefined;
  }

  #invalidate(head: ResponseHead): void {
    const headers = headerObject(head.rawHeaders);
    for (const url of invalidatedUrls(this.#url, headers.location, headers['content-location'])) this.#cache.purge(url);
  }
}

const EMPTY = Buffer.alloc(0);
/** A UTF-8 byte is at most 3 per UTF-16 unit: most URLs are known short without encoding them. */
const tooLong = (url: string) => url.length * 3 > MAX_KEY_BYTES && Buffer.byteLength(url) > MAX_KEY_BYTES;
const opaque = (tag: string) => tag.trim().replace(/^W\//, '');

/** RFC 9110 §13.1.2 and §13.1.3: If-None-Match (weak comparison) first, else If-Modified-Since. */
function notModified(request: Record<string, string>, stored: readonly string[]): boolean {
  const response = headerObject(stored);
  const noneMatch = request['if-none-match'];
  if (noneMatch !== undefined) {
    if (noneMatch.trim() === '*') return true;
    const etag = response.etag;
    return etag !== undefined && noneMatch.split(',').some((tag) => opaque(tag) === opaque(etag));
  }
  const since = request['if-modified-since'];
  const lastModified = response['last-modified'];
  if (since === undefined || lastModified === undefined) return false;
  const sinceTime = Date.parse(since);
  const modifiedTime = Date.parse(lastModified);
  return Number.isFinite(sinceTime) && Number.isFinite(modifiedTime) && modifiedTime <= sinceTime;
}

function hasValidator(meta: EntryMeta): boolean {
  for (let i = 0; i < meta.headers.length; i += 2) {
    const name = meta.headers[i]!.toLowerCase();
    if (name === 'etag' || name === 'last-modified') return true;
  }
  return false;
}

/** A 304's headers replace the stored ones of the same name (RFC 9111 §4.3.4); the policy is the revalidated one. */
export function refreshedMeta(meta: EntryMeta, policy: Policy, updates: Record<string, string>): EntryMeta {
  const skip = new Set(['content-length', 'transfer-encoding', 'age', 'connection', 'keep-alive']);
  const replaced = new Set(Object.keys(updates).filter((name) => !skip.has(name)));
  const headers: string[] = [];
  for (let i = 0; i < meta.headers.length; i += 2)
    if (!replaced.has(meta.headers[i]!.toLowerCase())) headers.push(meta.headers[i]!, meta.headers[i + 1]!);
  for (const name of replaced) headers.push(name, updates[name]!);
  return { ...meta, policy: policy.toObject(), headers };
}
