/**
 * The link between the lifecycle machine's `pool` actor and the pool
 * thread: it starts (and restarts) the thread, keeps the latest snapshot
 * and what DNS gave, and tells the machine `BACKENDS_CHANGED` on its own
 * channel. What a snapshot means for the listeners is the runtime's wiring.
 */
import * as Comlink from 'comlink';
import { fromCallback } from 'xstate';
import type { Config } from '../../config/schema.ts';
import { discoveredGroups, startupBackends } from '../../config/upstream-groups.ts';
import type { Logger } from '../../log.ts';
import type { LifecycleEvent } from '../../machines/lifecycle.ts';
import {
  assertNever,
  backendId,
  type ActorInit,
  type BackendId,
  type BackendSpec,
  type DnsStatus,
  type PoolApi,
  type PoolEvent,
  type PoolSeed,
  type PoolSnapshot,
} from '../../protocol.ts';
import { errorMessage, type ActorThread } from '../actor-thread.ts';
import { beforeInvoke, stoppedBySupervisor } from './no-ops.ts';
import type { ThreadSupervisor } from '../thread-supervisor.ts';

export interface PoolLinkWiring {
  supervision: ThreadSupervisor;
  log: Logger;
  config: () => Config;
  /** What the pool starts with: the config with the backend set known now. */
  init: () => ActorInit;
  /** A newer snapshot: every listener gets it. */
  published: (snapshot: PoolSnapshot) => void;
  /** Passive health ejected a backend: the health checker must see it unhealthy again. */
  ejected: (backend: BackendId) => void;
  /** DNS changed a set. */
  membershipChanged: (added: BackendSpec[], removed: BackendId[]) => void;
  /** Whether the pool answers may have changed (`pool_healthy`). */
  answeringChanged: () => void;
}

export class PoolLink {
  readonly #wiring: PoolLinkWiring;
  #thread: ActorThread<PoolApi> | undefined;
  #snapshot: PoolSnapshot | undefined;
  #answering = false;
  #sendBack: (event: LifecycleEvent) => void = beforeInvoke;
  /** What DNS gave (the pool's membership events): what a restarted pool or checker starts from. */
  readonly #discovered = new Map<BackendId, BackendSpec>();
  /** The last resolution of each DNS upstream, and the attempts per result (`ok`, `ENOTFOUND`…). */
  readonly #dnsStatus = new Map<string, DnsStatus>();
  readonly #dnsResolutions = new Map<string, Map<string, number>>();
  /** Settles true once the pool actor has started (and published its set), false if it failed. */
  readonly started: Promise<boolean>;
  readonly #settleStarted: (started: boolean) => void;

  constructor(wiring: PoolLinkWiring) {
    this.#wiring = wiring;
    const { promise, resolve } = Promise.withResolvers<boolean>();
    this.started = promise;
    this.#settleStarted = resolve;
  }

  /** The implementation of the machine's `pool` actor. */
  machineActor() {
    return fromCallback(({ sendBack }) => {
      this.#sendBack = sendBack;
      this.start();
      return stoppedBySupervisor;
    });
  }

  get thread(): ActorThread<PoolApi> | undefined {
    return this.#thread;
  }

  get snapshot(): PoolSnapshot | undefined {
    return this.#snapshot;
  }

  /** It answered its start and its latest heartbeat, and its thread runs. */
  get answering(): boolean {
    return this.#answering && (this.#thread?.alive ?? false);
  }

  get discovered(): BackendSpec[] {
    return [...this.#discovered.values()];
  }

  dnsStatus(upstream: string): DnsStatus | undefined {
    return this.#dnsStatus.get(upstream);
  }

  /** DNS resolution attempts per upstream and result, since start. */
  dnsResolutions(): { upstream: string; result: string; count: number }[] {
    return [...this.#dnsResolutions].flatMap(([upstream, results]) =>
      [...results].map(([result, count]) => ({ upstream, result, count })),
    );
  }

  /** Backends the latest snapshot knows healthy: where a restarted pool or checker starts from. */
  knownHealthy(): BackendId[] {
    return (this.#snapshot?.backends ?? []).filter((b) => b.healthy).map((b) => b.id);
  }

  /** Supervision gave up on the pool: the machine decides what follows. */
  gaveUp(failure: { id: number; message: string }): void {
    this.#sendBack({ type: 'WORKER_FAILED', actor: 'pool', ...failure });
  }

  heartbeat(answered: boolean): void {
    if (answered === this.#answering) return;
    this.#answering = answered;
    this.#wiring.answeringChanged();
  }

  failed(): void {
    this.#answering = false;
    this.#wiring.answeringChanged();
  }

  /** Teardown: a pool that never finished starting must not hold the listeners' start-up loop. */
  abandonStart(): void {
    this.#settleStarted(false);
  }

  /** A reload: the pool keeps what DNS gave the upstreams that still resolve from DNS; the others' sets go. */
  forgetUndiscovered(config: Config): void {
    const discovered = discoveredGroups(config);
    for (const [id, spec] of this.#discovered) if (!discovered.has(spec.upstream ?? '')) this.#discovered.delete(id);
    for (const name of [...this.#dnsStatus.keys()]) if (!discovered.has(name)) this.#dnsStatus.delete(name);
  }

  /** Starts the pool thread; again after a failure, from the backends and health known now. */
  start(): void {
    const { supervision, log } = this.#wiring;
    const pool = supervision.spawn<PoolApi>('pool', 0);
    const restarted = this.#thread !== undefined;
    this.#thread = pool;
    if (restarted) supervision.restarting(pool);
    const published = (snapshot: PoolSnapshot) => {
      // Events travel on their own channel: never let an older snapshot replace a newer one.
      if (this.#snapshot && this.#snapshot.version >= snapshot.version) return;
      this.#snapshot = snapshot;
      this.#wiring.published(snapshot);
      const healthy = startupBackends(this.#wiring.config(), snapshot);
      this.#sendBack({ type: 'BACKENDS_CHANGED', healthy, total: snapshot.backends.length });
    };
    const onEvent = (event: PoolEvent) => {
      switch (event.type) {
        case 'pool.published': {
          published(event.snapshot);
          return;
        }
        case 'pool.ejected': {
          this.#wiring.ejected(event.backend);
          return;
        }
        case 'pool.membership': {
          this.#membershipChanged(event.added, event.removed);
          return;
        }
        case 'pool.dns': {
          this.#dnsResolved(event.status, event.result);
          return;
        }
        default:
          assertNever(event);
      }
    };
    // A restarted pool starts from the backends and health known now, and keeps counting versions up.
    const seed: PoolSeed = {
      health: this.knownHealthy().map((backend) => ({ backend, healthy: true, reason: 'before restart' })),
      version: (this.#snapshot?.version ?? -1) + 1,
      discovered: this.discovered,
    };
    pool
      .call((api) => api.start(this.#wiring.init(), Comlink.proxy(onEvent), seed))
      .then(
        (first) => {
          published(first);
          supervision.running(pool);
          // Answering its start counts as the first heartbeat.
          this.#answering = true;
          this.#wiring.answeringChanged();
          this.#settleStarted(true);
          if (restarted) log.info({ event: 'actor.restarted', actor: 'pool' }, 'pool actor restarted');
        },
        (error: unknown) => {
          this.#settleStarted(false);
          // A start that threw leaves a thread that cannot serve: end it, as a failure.
          pool.kill(`start failed: ${errorMessage(error)}`);
        },
      );
  }

  #membershipChanged(added: BackendSpec[], removed: BackendId[]): void {
    for (const id of removed) this.#discovered.delete(id);
    for (const spec of added) this.#discovered.set(backendId(spec), spec);
    this.#wiring.membershipChanged(added, removed);
  }

  #dnsResolved(status: DnsStatus, result: string): void {
    this.#dnsStatus.set(status.upstream, status);
    const results = this.#dnsResolutions.get(status.upstream) ?? new Map<string, number>();
    results.set(result, (results.get(result) ?? 0) + 1);
    this.#dnsResolutions.set(status.upstream, results);
  }
}
