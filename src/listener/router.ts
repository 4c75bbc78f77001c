/**
 * Which upstream a request goes to, or which of the proxy's own answers it
 * gets: one decision for every engine (the fast path, the Node path,
 * upgrades). No routes: everything goes to `default`. With routes: the first
 * that matches; none → 404 `no_route`; a `respond` route answers itself; an
 * upstream without any backend → 503. A request never goes to another
 * route's upstream.
 *
 * A reload swaps the table: a request keeps the route (and group) it was
 * given, so it finishes on the table it started with.
 */
import type { Config } from '../config/schema.ts';
import { DEFAULT_UPSTREAM, expectsBackends, upstreamGroups } from '../config/upstream-groups.ts';
import { RouteTable, type RequestFacts, type Route } from '../routing/route-table.ts';
import { NO_BACKENDS, NO_ROUTE, routeAnswer, type OwnAnswer } from './own-answers.ts';
import type { UpstreamGroups } from './upstream-groups.ts';
import type { Upstreams } from './upstreams.ts';

export type Decision =
  | { readonly kind: 'forward'; readonly route: Route | undefined; readonly upstreams: Upstreams }
  | {
      readonly kind: 'answer';
      readonly route: Route | undefined;
      readonly upstreams: Upstreams | undefined;
      readonly answer: OwnAnswer;
    };

export class Router {
  readonly #groups: UpstreamGroups;
  #table: RouteTable | null = null;
  /** Each route's own answer, made once. */
  #answers = new Map<Route, OwnAnswer>();

  /** A reload's table, waiting for its upstreams to have a backend to send requests to. */
  #pending: { config: Config; table: RouteTable | null } | undefined;

  constructor(config: Config, groups: UpstreamGroups) {
    this.#groups = groups;
    this.#use(config, config.routes === null ? null : new RouteTable(config.routes));
  }

  /**
   * A reload, make before break: the new table is used once every upstream
   * it sends requests to, that has backends, has a selectable one (new
   * backends start unhealthy); until then requests keep the old table and
   * its upstreams. Returns true when the new table waits (`settle` applies
   * it later; `force` at the latest after the start-up timeout).
   */
  reconfigure(config: Config): boolean {
    this.#pending = { config, table: config.routes === null ? null : new RouteTable(config.routes) };
    return !this.settle();
  }

  /** A snapshot came: the waiting table is used if its upstreams can serve now. Returns true when none waits. */
  settle(): boolean {
    const pending = this.#pending;
    if (!pending) return true;
    // From the config, not the snapshot: right after the reload the snapshot may not list the new backends yet.
    // An upstream from DNS has backends to wait for even before its name has answered.
    const configured = new Map(upstreamGroups(pending.config).map((group) => [group.name, expectsBackends(group)]));
    const upstreams = pending.table === null ? [DEFAULT_UPSTREAM] : [...pending.table.upstreamNames()];
    const ready = upstreams.every(
      (name) => !(configured.get(name) ?? false) || (this.#groups.get(name)?.selectableCount ?? 0) > 0,
    );
    if (ready) this.force();
    return ready;
  }

  /** The waiting table is used now, ready or not (the wait is bounded). */
  force(): void {
    const pending = this.#pending;
    if (!pending) return;
    this.#pending = undefined;
    this.#use(pending.config, pending.table);
  }

  #use(config: Config, table: RouteTable | null): void {
    this.#table = table;
    this.#answers = new Map();
    for (const route of table?.routes ?? []) if (route.respond) this.#answers.set(route, routeAnswer(route.respond));
    this.#groups.activate(config);
  }

  /** There are routes: the caller must describe the request (no routes: `decide` ignores it). */
  get routing(): boolean {
    return this.#table !== null;
  }

  /** Some route matches on request headers: `RequestFacts.header` will be called. */
  get readsHeaders(): boolean {
    return this.#table?.needsHeaders ?? false;
  }

  decide(request: RequestFacts | undefined): Decision {
    const table = this.#table;
    if (table === null || request === undefined) return this.#forward(undefined, this.#groups.default);
    const route = table.match(request);
    if (route === undefined) return { kind: 'answer', route, upstreams: undefined, answer: NO_ROUTE };
    if (route.respond) {
      // #use made the answer of every responding route; making it here is only what the type asks for.
      const answer = this.#answers.get(route) ?? routeAnswer(route.respond);
      return { kind: 'answer', route, upstreams: undefined, answer };
    }
    // Validated at load: a route that does not respond names an upstream that exists.
    const named = route.upstream === null ? undefined : this.#groups.get(route.upstream);
    return this.#forward(route, named ?? this.#groups.default);
  }

  #forward(route: Route | undefined, upstreams: Upstreams): Decision {
    if (upstreams.totalCount === 0) return { kind: 'answer', route, upstreams, answer: NO_BACKENDS };
    return { kind: 'forward', route, upstreams };
  }
}
