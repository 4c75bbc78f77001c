/**
 * Per-request hooks: a module the user names in `proxy.request_hooks`,
 * imported once in every listener thread, so the code runs where the
 * request is. Every export is optional and may be async. A hook that throws
 * answers that request 500 and is logged; nothing else is affected. With no
 * module configured none of this runs, and no session object is created.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * The proxy as a request hook sees it, from the state its listener thread
 * holds: the same questions the seed's readiness filter asks of `proxy`.
 */
export interface ProxyView {
  isHealthy(): boolean;
  hasHealthyBackends(): boolean;
  pool: { isHealthy(): boolean };
  cache: { isHealthy(): boolean };
}

export interface Session {
  /** Readiness as this listener thread knows it. */
  proxy: ProxyView;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  client_ip: string;
  /** Yours: carried from onRequestStart to onRequestEnd. */
  ctx: Record<string, unknown>;
  /** Set for onRequestEnd. */
  status?: number;
  duration_ms?: number;
  /** Bytes sent to the client for this response: status line, headers and body. */
  bytes?: number;
  /** `address:port` of the backend that answered, if any. */
  backend?: string;
}

export interface PeerChoice {
  address: string;
  port: number;
}

export type HeaderMap = Record<string, string | string[]>;

export interface RequestFilterResult {
  respond: { status: number; headers?: Record<string, string>; body?: string };
}

/** Plain functions, not methods: sluice calls each on its own, with no `this`. */
export interface RequestHooks {
  onRequestStart?: (session: Session) => unknown;
  onRequestEnd?: (session: Session) => unknown;
  /** `{ respond }` answers without an upstream; `undefined` goes on. */
  requestFilter?: (session: Session) => RequestFilterResult | undefined | Promise<RequestFilterResult | undefined>;
  /** Choose the backend among the selectable ones; `undefined` leaves it to the balancer. */
  upstreamPeer?: (
    session: Session,
    backends: readonly PeerChoice[],
  ) => PeerChoice | undefined | Promise<PeerChoice | undefined>;
  /** Edit the headers sent upstream (lower-case names), in place. */
  upstreamRequestFilter?: (session: Session, headers: HeaderMap) => unknown;
  /** Edit the response headers sent to the client (lower-case names), in place. */
  responseFilter?: (session: Session, headers: HeaderMap) => unknown;
}

const hookNames = [
  'onRequestStart',
  'onRequestEnd',
  'requestFilter',
  'upstreamPeer',
  'upstreamRequestFilter',
  'responseFilter',
] as const;

export async function loadRequestHooks(modulePath: string | null): Promise<RequestHooks | undefined> {
  if (!modulePath) return undefined;
  const module = (await import(pathToFileURL(modulePath).href)) as Record<string, unknown> & {
    default?: Record<string, unknown>;
  };
  const source = hookNames.some((name) => typeof module[name] === 'function') ? module : (module.default ?? {});
  const hooks: RequestHooks = {};
  for (const name of hookNames) {
    const hook = source[name];
    if (typeof hook === 'function') (hooks as Record<string, unknown>)[name] = hook;
  }
  return hooks;
}

/**
 * Why the module could not be loaded, as data that survives crossing
 * threads: Node's code (`ERR_MODULE_NOT_FOUND`, `ERR_INVALID_TYPESCRIPT_SYNTAX`,
 * or the error's name, `SyntaxError`) and a message naming the module. Node's
 * " imported from <this file>" names sluice's code, not the user's: dropped.
 */
export function hooksLoadFailure(modulePath: string, error: unknown): { code: string; message: string } {
  // Anything can be thrown while loading a module, `null` and strings included.
  const err = error as Partial<NodeJS.ErrnoException> | null | undefined;
  const code = err?.code ?? err?.name ?? 'Error';
  const reason = String(err?.message ?? error).replace(` imported from ${fileURLToPath(import.meta.url)}`, '');
  return { code, message: `request_hooks ${modulePath}: ${reason}` };
}

/** Flat `[name, value, …]` → `{ name: value }` (lower-case; repeated names become arrays). */
export function toHeaderMap(flat: readonly string[]): HeaderMap {
  const map: HeaderMap = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    const value = flat[i + 1]!;
    const existing = map[name];
    map[name] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return map;
}

export function fromHeaderMap(map: HeaderMap): string[] {
  const flat: string[] = [];
  for (const [name, value] of Object.entries(map)) {
    // A hook edits the map in place and may have put a number (or anything) in, whatever the type says.
    const values: unknown[] = Array.isArray(value) ? value : [value];
    for (const v of values) flat.push(name, String(v));
  }
  return flat;
}

export function newSession(
  proxy: ProxyView,
  method: string,
  url: string,
  headers: IncomingHttpHeaders,
  clientIp: string,
): Session {
  return { proxy, method, path: url, headers, client_ip: clientIp, ctx: {} };
}
