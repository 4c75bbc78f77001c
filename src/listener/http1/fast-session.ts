/**
 * The `Session` request hooks see on the fast path, built lazily: method,
 * path and client address are strings the exchange already holds; the
 * header object and `ctx` are made only when a hook reads them. A hook
 * that reads nothing costs one small object.
 *
 * The header object is made from the request head, whose bytes may lie in
 * the thread's shared read buffer (direct-reads.ts): the exchange hands the
 * session a copied head (`rebase`) before any hook can run after the read.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ProxyView, Session } from '../request-hooks.ts';
import type { RequestHead } from './request-head.ts';

export class FastSession implements Session {
  readonly proxy: ProxyView;
  method: string;
  path: string;
  client_ip: string;
  status?: number;
  duration_ms?: number;
  bytes?: number;
  backend?: string;
  #head: RequestHead;
  #headers: IncomingHttpHeaders | undefined;
  #ctx: Record<string, unknown> | undefined;

  constructor(proxy: ProxyView, head: RequestHead, clientIp: string) {
    this.proxy = proxy;
    this.#head = head;
    this.method = head.method;
    this.path = head.target;
    this.client_ip = clientIp;
  }

  get headers(): IncomingHttpHeaders {
    return (this.#headers ??= headerObject(this.#head.rawHeaders));
  }

  set headers(headers: IncomingHttpHeaders) {
    this.#headers = headers;
  }

  get ctx(): Record<string, unknown> {
    return (this.#ctx ??= {});
  }

  set ctx(ctx: Record<string, unknown>) {
    this.#ctx = ctx;
  }

  /** The same head, its bytes now a copy that outlives the read. */
  rebase(head: RequestHead): void {
    this.#head = head;
  }
}

/** As Node's `req.headers`: lower-case names, repeated values joined with ", ", `set-cookie` an array. */
function headerObject(raw: readonly string[]): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name === 'set-cookie') {
      (headers['set-cookie'] ??= []).push(value);
      continue;
    }
    const existing = headers[name];
    headers[name] = existing === undefined ? value : `${String(existing)}, ${value}`;
  }
  return headers;
}
