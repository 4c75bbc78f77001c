/**
 * Every upstream group one listener thread serves, by name. A snapshot
 * reaches all of them (each keeps its own members); a reload adds and
 * removes groups make-before-break: a removed group stops being chosen by
 * new requests at once, while requests already holding it finish on it.
 */
import type { Config } from '../config/schema.ts';
import { DEFAULT_UPSTREAM, routedUpstreams, upstreamGroups } from '../config/upstream-groups.ts';
import type { InFlight } from '../pool/balancers/in-flight.ts';
import type { PassiveReport, PoolSnapshot } from '../protocol.ts';
import { Upstreams } from './upstreams.ts';

export class UpstreamGroups {
  readonly #byName = new Map<string, Upstreams>();
  readonly #inFlight: InFlight;
  readonly #onPassive: (report: PassiveReport) => void;
  #routed: Upstreams[] = [];
  #snapshot: PoolSnapshot | undefined;
  #default!: Upstreams;

  constructor(config: Config, inFlight: InFlight, onPassive: (report: PassiveReport) => void) {
    this.#inFlight = inFlight;
    this.#onPassive = onPassive;
    this.reconfigure(config);
    this.activate(config);
  }

  get inFlight(): InFlight {
    return this.#inFlight;
  }

  /** The group of requests when there are no routes. */
  get default(): Upstreams {
    return this.#default;
  }

  get(name: string): Upstreams | undefined {
    return this.#byName.get(name);
  }

  /**
   * A reload: the new config's groups are made or updated at once; groups it
   * no longer has stay until `activate`, since requests of the route table
   * still in use may go to them (make before break).
   */
  reconfigure(config: Config): void {
    for (const group of upstreamGroups(config)) {
      const settings = { group, proxy: config.proxy };
      const known = this.#byName.get(group.name);
      if (known) {
        known.reconfigure(settings);
        continue;
      }
      const created = new Upstreams(settings, this.#inFlight, this.#onPassive);
      if (this.#snapshot) created.apply(this.#snapshot);
      this.#byName.set(group.name, created);
    }
    // upstreamGroups always gives the default group, so the loop has just made or updated it.
    const fallback = this.#byName.get(DEFAULT_UPSTREAM);
    if (fallback) this.#default = fallback;
  }

  /** The route table of `config` is the one in use: its upstreams are what /ready asks about, others go. */
  activate(config: Config): void {
    const wanted = new Set(upstreamGroups(config).map((group) => group.name));
    // A removed group's backends leave the pool's snapshot too: their idle connections close then
    // (UpstreamSockets.keepOnly), and requests already on them finish.
    for (const name of this.#byName.keys()) if (!wanted.has(name)) this.#byName.delete(name);
    this.#routed = routedUpstreams(config).flatMap((name) => this.#byName.get(name) ?? []);
  }

  apply(snapshot: PoolSnapshot): number {
    this.#snapshot = snapshot;
    let version = snapshot.version;
    for (const group of this.#byName.values()) version = group.apply(snapshot);
    return version;
  }

  /** Every upstream a route names (or `default`) has its `min_healthy` selectable backends. */
  get available(): boolean {
    for (const group of this.#routed) if (!group.available) return false;
    return true;
  }

  /** Selectable backends over the groups requests can reach. */
  get selectableCount(): number {
    let count = 0;
    for (const group of this.#routed) count += group.selectableCount;
    return count;
  }

  get totalCount(): number {
    let count = 0;
    for (const group of this.#byName.values()) count += group.totalCount;
    return count;
  }
}
