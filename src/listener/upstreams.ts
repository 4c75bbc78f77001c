/**
 * What one listener thread knows of one upstream group: its backends in the
 * latest snapshot from the pool actor, the balancing policy over them, and
 * what it has seen of each backend on live traffic (for passive health).
 * The connections to them are the thread's UpstreamSockets
 * (http1/upstream-sockets.ts), which every request uses.
 */
import type { UpstreamGroup } from '../config/upstream-groups.ts';
import type { ProxyConfig } from './types.ts';
import type { BackendId, BackendState, PassiveReport, PoolSnapshot } from '../protocol.ts';
import type { Balancer } from '../pool/balancers/balancer.ts';
import { createBalancer } from '../pool/balancers/create.ts';
import type { InFlight } from '../pool/balancers/in-flight.ts';
import { hashKeyReader, type KeyedRequest, type KeyOf } from './hash-key.ts';

/** What a group is configured with: its own sections, and the proxy's upstream timeouts. */
export interface GroupSettings {
  group: Pick<UpstreamGroup, 'name' | 'health_check' | 'load_balancing'>;
  proxy: ProxyConfig;
}

export class Upstreams {
  readonly name: string;
  #config: GroupSettings;
  #balancer: Balancer<BackendState>;
  #keyOf: KeyOf | undefined;
  /** This group's backends in the latest snapshot. */
  #members: BackendState[] = [];
  readonly #onPassive: (report: PassiveReport) => void;
  /** Backends this thread reported failures for since its last success with them. */
  readonly #failing = new Set<BackendId>();
  readonly inFlight: InFlight;
  #version = -1;
  #total = 0;
  #selectable: BackendState[] = [];

  constructor(config: GroupSettings, inFlight: InFlight, onPassive: (report: PassiveReport) => void) {
    this.name = config.group.name;
    this.#config = config;
    this.inFlight = inFlight;
    this.#onPassive = onPassive;
    const { algorithm, hash_key } = config.group.load_balancing;
    this.#balancer = createBalancer<BackendState>(algorithm, inFlight);
    this.#keyOf = algorithm === 'consistent_hash' ? hashKeyReader(hash_key) : undefined;
  }

  /**
   * A reload. A new balancing policy starts from the current snapshot (new
   * upstream timeouts are read by each request as it starts).
   */
  reconfigure(config: GroupSettings): void {
    const before = this.#config;
    this.#config = config;
    const { algorithm, hash_key } = config.group.load_balancing;
    if (algorithm !== before.group.load_balancing.algorithm || hash_key !== before.group.load_balancing.hash_key) {
      this.#balancer = createBalancer<BackendState>(algorithm, this.inFlight);
      this.#keyOf = algorithm === 'consistent_hash' ? hashKeyReader(hash_key) : undefined;
      this.#balancer.reset(this.#members.filter((b) => b.enabled));
    }
  }

  /** Returns the version now in use. Older snapshots than the one held are ignored. */
  apply(snapshot: PoolSnapshot): number {
    if (snapshot.version < this.#version) return this.#version;
    this.#version = snapshot.version;
    const members = snapshot.backends.filter((b) => b.upstream === this.name);
    this.#members = members;
    this.#total = members.length;
    this.#selectable = members.filter((b) => b.selectable);
    this.#balancer.reset(members.filter((b) => b.enabled));
    return this.#version;
  }

  get selectableCount(): number {
    return this.#selectable.length;
  }

  /** The backends a request may go to now. */
  get selectable(): readonly BackendState[] {
    return this.#selectable;
  }

  get totalCount(): number {
    return this.#total;
  }

  /** `health_check.min_healthy` selectable backends: what /ready and start-up wait for. */
  get available(): boolean {
    return this.#selectable.length >= this.#config.group.health_check.min_healthy;
  }

  pick(req: KeyedRequest, exclude?: ReadonlySet<string>): BackendState | undefined {
    return this.#balancer.pick(this.#keyOf?.(req), exclude);
  }

  /** Consistent hashing reads the request to choose; the other policies do not need it. */
  get needsRequestKey(): boolean {
    return this.#keyOf !== undefined;
  }

  /** A connect error, reset or timeout on live traffic. */
  noteFailure(backend: BackendId, code: string): void {
    if (!this.#config.group.health_check.passive) return;
    this.#failing.add(backend);
    this.#onPassive({ type: 'failure', backend, code });
  }

  /** A response came: crossing threads only when it ends a run of failures. */
  noteSuccess(backend: BackendId): void {
    if (this.#failing.size === 0 || !this.#failing.delete(backend)) return;
    this.#onPassive({ type: 'recovered', backend });
  }
}
