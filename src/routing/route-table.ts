/**
 * The route table: the first route, in config order, whose `match` holds for a
 * request. Pure (no I/O). `match` runs per request, so everything that can be
 * is compiled once (lowercase hosts, wildcard suffixes, decoded prefixes), and
 * each request scans only the routes its Host could take, from a per-Host cache.
 */
import { compileHeaderEdits, type HeaderEdits, type HeaderEditsConfig } from './header-edits.ts';

export { editFlatHeaders, editHeaderMap } from './header-edits.ts';
export type { HeaderEdits } from './header-edits.ts';
export { targetAfterStrip } from './strip-prefix.ts';

/** One route as the config gives it, already validated (exactly one of `upstream` / `respond`). */
export interface RouteConfig {
  name?: string | null;
  match: RouteMatchConfig;
  upstream?: string | null;
  respond?: { status: number; body?: string; headers?: Record<string, string> } | null;
  strip_prefix?: boolean;
  request_headers?: HeaderEditsConfig | null;
  response_headers?: HeaderEditsConfig | null;
  cache?: boolean;
}

export interface RouteMatchConfig {
  host?: string;
  path_prefix?: string;
  path_exact?: string;
  methods?: string[];
  headers?: Record<string, string>;
}

/** What matching needs to know of a request; `header` is only called when a route has `match.headers`. */
export interface RequestFacts {
  method: string;
  /** The request target as sent, with query. */
  target: string;
  host: string | undefined;
  /** The header's value, several lines joined with ", " (see `joinedHeader`). */
  header(nameLowercase: string): string | undefined;
}

export interface Route {
  readonly index: number;
  readonly name: string;
  readonly upstream: string | null;
  readonly respond: RouteResponse | null;
  /** The prefix to strip, when `strip_prefix`. */
  readonly stripPrefix: string | null;
  /** `null` when the route edits none, so the fast path can skip the work. */
  readonly requestHeaders: HeaderEdits | null;
  readonly responseHeaders: HeaderEdits | null;
  readonly cache: boolean;
  /** `match.headers` is given: the caller must supply `header()`. */
  readonly needsHeaders: boolean;
}

/** A route that answers by itself (`respond`), with the config's defaults filled in. */
export interface RouteResponse {
  readonly status: number;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

export interface RouteTableOptions {
  /** Distinct Host values whose candidate routes are remembered; later new ones are resolved per request. */
  hostCacheSize?: number;
}

/** A route's `match`, compiled. Every field given must hold. */
interface Matcher {
  readonly route: Route;
  /** Exact host: lowercase, without port, IPv6 in brackets. */
  readonly host: string | null;
  /** `*.example.com` as `.example.com`. */
  readonly hostSuffix: string | null;
  /** Decoded as request paths are (unreserved escapes only). */
  readonly prefix: string | null;
  /** The prefix ends with `/`: any path starting with it matches, no segment boundary needed. */
  readonly prefixIsDirectory: boolean;
  readonly exact: string | null;
  readonly methods: readonly string[] | null;
  /** Lowercase name and exact value. */
  readonly headers: readonly (readonly [string, string])[] | null;
}

const DEFAULT_HOST_CACHE_SIZE = 1024;
// Longer Host values (253 is the longest DNS name) are never cached: a client must not pin memory with them.
const MAX_CACHED_HOST_LENGTH = 300;

export class RouteTable {
  readonly routes: readonly Route[];
  /** Some route has `match.headers`: the caller must supply `header()`. */
  readonly needsHeaders: boolean;
  readonly #matchers: readonly Matcher[];
  readonly #withoutHost: readonly Matcher[];
  readonly #anyHost: boolean;
  readonly #anyWildcard: boolean;
  readonly #anyPath: boolean;
  /** Every host name the config spells out, with the routes such a request could take, in order. */
  readonly #byExactHost = new Map<string, readonly Matcher[]>();
  /** Raw Host value as sent → candidate routes, so a repeated Host costs one Map lookup. */
  readonly #byRawHost = new Map<string, readonly Matcher[]>();
  readonly #hostCacheSize: number;

  constructor(routes: readonly RouteConfig[], options: RouteTableOptions = {}) {
    this.#matchers = routes.map(compileRoute);
    this.routes = this.#matchers.map((matcher) => matcher.route);
    this.needsHeaders = this.routes.some((route) => route.needsHeaders);
    this.#withoutHost = this.#matchers.filter((m) => m.host === null && m.hostSuffix === null);
    this.#anyHost = this.#withoutHost.length < this.#matchers.length;
    this.#anyWildcard = this.#matchers.some((m) => m.hostSuffix !== null);
    this.#anyPath = this.#matchers.some((m) => m.prefix !== null || m.exact !== null);
    this.#hostCacheSize = options.hostCacheSize ?? DEFAULT_HOST_CACHE_SIZE;
    for (const { host } of this.#matchers) {
      if (host === null || this.#byExactHost.has(host)) continue;
      this.#byExactHost.set(
        host,
        this.#matchers.filter((m) => hostAccepts(m, host)),
      );
    }
  }

  /** How many Host values have their candidate routes cached; never more than `hostCacheSize`. */
  get cachedHosts(): number {
    return this.#byRawHost.size;
  }

  match(request: RequestFacts): Route | undefined {
    const target = request.target;
    let path = target;
    let pathEnd = target.length;
    if (this.#anyPath) {
      const query = target.indexOf('?');
      if (query !== -1) pathEnd = query;
      const percent = target.indexOf('%');
      if (percent !== -1 && percent < pathEnd) {
        path = decodeUnreserved(target, percent, pathEnd);
        pathEnd = path.length;
      }
    }
    const candidates = this.#candidatesFor(request.host);
    if (candidates !== null) return firstMatch(candidates, request, path, pathEnd, null);
    // A Host only wildcards can take, not cached (cache full, or overlong): test hosts route by route.
    // (#candidatesFor answers null only for a request that has a Host.)
    return firstMatch(this.#matchers, request, path, pathEnd, hostName(request.host ?? ''));
  }

  /** The routes a request with this Host could take, in order; `null` when they must be found per route. */
  #candidatesFor(host: string | undefined): readonly Matcher[] | null {
    if (!this.#anyHost) return this.#matchers;
    if (host === undefined) return this.#withoutHost;
    const cached = this.#byRawHost.get(host);
    if (cached !== undefined) return cached;
    const cacheable = this.#byRawHost.size < this.#hostCacheSize && host.length <= MAX_CACHED_HOST_LENGTH;
    const name = hostName(host);
    let candidates = this.#byExactHost.get(name) ?? (this.#anyWildcard ? undefined : this.#withoutHost);
    if (candidates === undefined) {
      // Only wildcards can take this host; building its list allocates, so only when it will be kept.
      if (!cacheable) return null;
      candidates = this.#matchers.filter((m) => hostAccepts(m, name));
    }
    if (cacheable) this.#byRawHost.set(host, candidates);
    return candidates;
  }

  /**
   * For `-t`: routes an earlier route makes unreachable. Reported only when certain:
   * every request the later route matches provably matches the earlier one.
   */
  unreachable(): { route: string; shadowedBy: string }[] {
    const found: { route: string; shadowedBy: string }[] = [];
    this.#matchers.forEach((later, i) => {
      const earlier = this.#matchers.slice(0, i).find((m) => covers(m, later));
      if (earlier !== undefined) found.push({ route: later.route.name, shadowedBy: earlier.route.name });
    });
    return found;
  }

  /** Upstream names any route refers to. */
  upstreamNames(): Set<string> {
    const names = new Set<string>();
    for (const route of this.routes) if (route.upstream !== null) names.add(route.upstream);
    return names;
  }
}

function compileRoute(config: RouteConfig, index: number): Matcher {
  const { host, path_prefix: prefix, path_exact: exact, methods, headers } = config.match;
  const respond = config.respond ?? null;
  const decodedPrefix = prefix === undefined ? null : decodePath(prefix);
  const route: Route = {
    index,
    name: config.name ?? String(index),
    upstream: config.upstream ?? null,
    respond: respond && { status: respond.status, body: respond.body ?? '', headers: { ...respond.headers } },
    stripPrefix: config.strip_prefix === true ? decodedPrefix : null,
    requestHeaders: compileHeaderEdits(config.request_headers),
    responseHeaders: compileHeaderEdits(config.response_headers),
    cache: config.cache === true,
    needsHeaders: headers !== undefined,
  };
  const wildcard = host?.startsWith('*.') === true;
  return {
    route,
    host: host === undefined || wildcard ? null : configHostName(host),
    hostSuffix: wildcard ? host.slice(1).toLowerCase() : null,
    prefix: decodedPrefix,
    prefixIsDirectory: decodedPrefix?.endsWith('/') === true,
    exact: exact === undefined ? null : decodePath(exact),
    methods: methods === undefined ? null : [...methods],
    headers: headers === undefined ? null : Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]),
  };
}

function firstMatch(
  matchers: readonly Matcher[],
  request: RequestFacts,
  path: string,
  pathEnd: number,
  host: string | null, // given when `matchers` were not chosen by host already
): Route | undefined {
  for (const m of matchers) {
    if (host !== null && !hostAccepts(m, host)) continue;
    if (m.methods !== null && !m.methods.includes(request.method)) continue;
    if (m.exact !== null && (pathEnd !== m.exact.length || !path.startsWith(m.exact))) continue;
    if (m.prefix !== null && !prefixHolds(m.prefix, m.prefixIsDirectory, path, pathEnd)) continue;
    if (m.headers !== null && !headersHold(m.headers, request)) continue;
    return m.route;
  }
  return undefined;
}

function hostAccepts(m: Matcher, name: string): boolean {
  if (m.host !== null) return m.host === name;
  if (m.hostSuffix !== null) return name.length > m.hostSuffix.length && name.endsWith(m.hostSuffix);
  return true;
}

/** `path` up to `pathEnd` (the query excluded) is in `prefix`, by whole segments unless it ends with `/`. */
function prefixHolds(prefix: string, isDirectory: boolean, path: string, pathEnd: number): boolean {
  if (prefix.length > pathEnd || !path.startsWith(prefix)) return false;
  return isDirectory || prefix.length === pathEnd || path.charCodeAt(prefix.length) === SLASH;
}

function headersHold(headers: readonly (readonly [string, string])[], request: RequestFacts): boolean {
  for (const [name, value] of headers) if (request.header(name) !== value) return false;
  return true;
}

/** The host name of a Host value: lowercase, port dropped (`API.example.com:8080`, `[::1]:80` → `[::1]`). */
export function hostName(host: string): string {
  let end = host.length;
  if (host.charCodeAt(0) === OPEN_BRACKET) {
    const close = host.indexOf(']');
    if (close !== -1) end = close + 1;
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1) end = colon;
  }
  // A fully qualified name's trailing dot (`api.example.com.`) names the same host.
  if (end > 1 && host.charCodeAt(end - 1) === 0x2e) end--;
  return (end === host.length ? host : host.slice(0, end)).toLowerCase();
}

// A config host is a name, not a Host value, but may be written as one; a bare IPv6 literal gets its brackets.
function configHostName(host: string): string {
  const bareIpv6 = host.charCodeAt(0) !== OPEN_BRACKET && host.indexOf(':') !== host.lastIndexOf(':');
  return bareIpv6 ? `[${host.toLowerCase()}]` : hostName(host);
}

/** A header's value from Node's flat rawHeaders, several lines joined with ", " (RFC 9110 §5.3). */
export function joinedHeader(rawHeaders: readonly string[], nameLowercase: string): string | undefined {
  let joined: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== nameLowercase) continue;
    joined = joined === undefined ? rawHeaders[i + 1]! : `${joined}, ${rawHeaders[i + 1]!}`;
  }
  return joined;
}

function decodePath(path: string): string {
  const percent = path.indexOf('%');
  return percent === -1 ? path : decodeUnreserved(path, percent, path.length);
}

/**
 * `target` up to `end` with the escapes of unreserved characters decoded (RFC 3986 §2.3: `%7E` → `~`);
 * every other escape is kept as sent (`%2F` stays, so segments never change) and `..` is left alone.
 * `first` is the index of the first `%`.
 */
function decodeUnreserved(target: string, first: number, end: number): string {
  let out = '';
  let copied = 0;
  let at = first;
  while (at !== -1 && at + 2 < end) {
    const code = hexDigit(target.charCodeAt(at + 1)) * 16 + hexDigit(target.charCodeAt(at + 2));
    if (code >= 0 && isUnreserved(code)) {
      out += target.slice(copied, at) + String.fromCharCode(code);
      copied = at + 3;
      at = target.indexOf('%', copied);
    } else {
      at = target.indexOf('%', at + 1);
    }
  }
  return out + target.slice(copied, end);
}

// -1 pushes a pair with any non-hex digit below zero: 16 * -1 + 15 < 0.
function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function isUnreserved(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5f ||
    c === 0x7e
  );
}

/** Every request `later` matches also matches `earlier`: each field `earlier` gives is implied by `later`'s. */
function covers(earlier: Matcher, later: Matcher): boolean {
  return (
    hostCovers(earlier, later) &&
    pathCovers(earlier, later) &&
    methodsCover(earlier, later) &&
    headersCover(earlier, later)
  );
}

function hostCovers(earlier: Matcher, later: Matcher): boolean {
  if (earlier.host !== null) return later.host === earlier.host;
  if (earlier.hostSuffix === null) return true;
  if (later.host !== null) return hostAccepts(earlier, later.host);
  return later.hostSuffix?.endsWith(earlier.hostSuffix) === true;
}

// A later route without a path field also takes targets no path field matches (`*`, absolute-form): not covered.
function pathCovers(earlier: Matcher, later: Matcher): boolean {
  if (earlier.exact !== null && later.exact !== earlier.exact) return false;
  const prefix = earlier.prefix;
  if (prefix === null) return true;
  // A later prefix is inside the earlier one when, read as a path, it matches it: then so does every path it takes.
  const inPrefix = (path: string | null) =>
    path !== null && prefixHolds(prefix, earlier.prefixIsDirectory, path, path.length);
  return inPrefix(later.exact) || inPrefix(later.prefix);
}

function methodsCover(earlier: Matcher, later: Matcher): boolean {
  const methods = earlier.methods;
  if (methods === null) return true;
  return later.methods?.every((method) => methods.includes(method)) === true;
}

function headersCover(earlier: Matcher, later: Matcher): boolean {
  if (earlier.headers === null) return true;
  const laterHeaders = later.headers ?? [];
  return earlier.headers.every(([name, value]) => laterHeaders.some(([n, v]) => n === name && v === value));
}

const SLASH = 0x2f;
const OPEN_BRACKET = 0x5b;
