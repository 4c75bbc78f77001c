/**
 * How the cache step and the fast path's exchange meet: the exchange calls
 * a tap at each step of a request on a caching route (and only there: on
 * other routes it has none, and a request pays one field test), and the tap
 * drives the exchange through `CachedExchange`.
 *
 *   start ─▶ tap.begin ─┬─▶ exchange.serveCached (a hit)
 *                       └─▶ exchange.goUpstream ─▶ tap.upstreamHeaders
 *   response head ─▶ tap.answersInstead? (a 304 refreshing an entry, an error a stale entry answers)
 *                 └─▶ tap.clientHeaders (Cache-Status) ─▶ tap.body … ─▶ tap.complete
 *   any end ─▶ tap.end (a response not complete is never stored)
 */
import type { RequestHead } from '../listener/http1/request-head.ts';
import type { ResponseHead } from '../listener/http1/response-head.ts';
import type { Upstreams } from '../listener/upstreams.ts';
import type { Route } from '../routing/route-table.ts';

/** What the cache step may do with the exchange it belongs to. */
export interface CachedExchange {
  /**
   * Answer from the store: `head` is the status line and header lines; the exchange ends the head
   * and writes `body` (not for HEAD).
   */
  serveCached(status: number, head: string, body: Buffer): void;
  /** A miss, a revalidation or a bypass: forward as without a cache. */
  goUpstream(): void;
  /** The request waits (a coalesced miss): its head must not point into a read buffer any more. */
  detachHead(): void;
  /** The client has gone: nothing will be served. */
  readonly done: boolean;
}

export interface ExchangeTap {
  begin(exchange: CachedExchange): void;
  /** The header lines for the upstream, given the ones the rules would send; undefined: those. */
  upstreamHeaders(routed: () => string[]): string[] | undefined;
  /** A response head came: true when the tap answered the client itself (the response is not passed on). */
  answersInstead(head: ResponseHead): boolean;
  /** The header lines for the client (Cache-Status added), from the upstream's or a hook's. */
  clientHeaders(head: ResponseHead, replaced: readonly string[] | undefined): string[];
  /** Response body bytes as framed (valid only during the call). */
  body(bytes: Buffer): void;
  /** The whole response went to the client. */
  complete(): void;
  /** The proxy is about to answer `status` itself (an upstream failure): true when the tap answered instead. */
  answersFailure(status: number): boolean;
  /** The exchange ended, whatever happened. */
  end(): void;
  /** The Cache-Status line (with CRLF) for an answer of the proxy's own (502, 504, …). */
  cacheStatusLine(): string;
}

/** What the fast path is given when a `cache` section is configured (thread-cache.ts). */
export interface CacheSteps {
  stepFor(head: RequestHead, proto: string, route: Route | undefined, upstreams: Upstreams): ExchangeTap;
}
