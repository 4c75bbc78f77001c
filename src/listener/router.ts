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
import { RouteTable, type RequestFacts, type Route } from '../routing/route-table.ts';
import { NO_BACKENDS, NO_ROUTE, routeAnswer, type OwnAnswer } from './own-answers.ts';
import type { UpstreamGroups } from './upstream-groups.ts';
import type { Upstreams } from './upstreams.ts';

export type Decision =
  | { readonly kind: 'forward'; readonly route: Route | undefined; readonly upstreams: Upstreams }
  | { readonly kind: 'answer'; readonly route: Route | undefined; readonly upstreams: Upstreams | undefined; readonly answer: OwnAnswer };

export class Router {
  readonly #groups: UpstreamGroups;
  #table: RouteTable | null = null;
  /** Each route's own answer, made once. */
  #answers = new Map<Route, OwnAnswer>();

  constructor(config: Config, groups: UpstreamGroups) {
    this.#groups = groups;
    this.reconfigure(config);
  }

  reconfigure(config: Config): void {
    this.#table = config.routes === null ? null : new RouteTable(config.routes);
    this.#answers = new Map();
    for (const route of this.#table?.routes ?? []) if (route.respond) this.#answers.set(route, routeAnswer(route.respond));
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
    if (route.respond) return { kind: 'answer', route, upstreams: undefined, answer: this.#answers.get(route)! };
    // Validated at load: a route names an upstream that exists.
    return this.#forward(route, this.#groups.get(route.upstream!) ?? this.#groups.default);
  }

  #forward(route: Route | undefined, upstreams: Upstreams): Decision {
    if (upstreams.totalCount === 0) return { kind: 'answer', route, upstreams, answer: NO_BACKENDS };
    return { kind: 'forward', route, upstreams };
  }
}
