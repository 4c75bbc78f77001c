/**
 * The actor threads behind the names the lifecycle machine invokes. Each
 * name has its link, in links/, with its own channel back to the machine:
 * `pool` (pool-link.ts), `healthChecker` (health-checker-link.ts) and
 * `listeners` (listener-group.ts). This file wires the links together —
 * health flips go to the pool, the pool's snapshots to every listener,
 * passive failures from the listeners to the pool — and holds what the
 * supervisor asks of all of them: reloads, backends, counters, teardown.
 * Only control crosses threads; requests never do.
 *
 * A thread that fails is restarted by the ThreadSupervisor; its link
 * decides what it starts from (the pool from the backends and health known
 * now), while the others keep serving.
 */
import type * as Comlink from 'comlink';
import type { Config } from '../config/schema.ts';
import { upstreamGroups } from '../config/upstream-groups.ts';
import { newCounterBuffer, readCounters } from '../listener/connections.ts';
import type { Logger, LogOptions } from '../log.ts';
import type { LifecycleState } from '../machines/lifecycle.ts';
import { MAX_BACKEND_SLOTS } from '../pool/backend-pool.ts';
import { InFlight } from '../pool/balancers/in-flight.ts';
import {
  backendId,
  type ActorInit,
  type ActorKind,
  type BackendId,
  type BackendSpec,
  type HealthEvent,
  type ListenerApi,
  type PoolApi,
  type PoolSnapshot,
  type ProbeReport,
} from '../protocol.ts';
import type { ActorThread } from './actor-thread.ts';
import type { InheritedListener, InheritedSockets } from './inherited-sockets.ts';
import { TicketKeyRotation, type HandedOverKeys } from './ticket-key-rotation.ts';
import { listenSpecs } from '../config/listeners.ts';
import type { CertificateInfo, Failure, ListenerTls, TlsApplied } from '../protocol.ts';
import { HealthCheckerLink } from './links/health-checker-link.ts';
import { ListenerGroup } from './links/listener-group.ts';
import { PoolLink } from './links/pool-link.ts';
import type { BackendRow, UpstreamStatus, WorkerRow } from './supervisor-view.ts';
import { ThreadSupervisor, type RestartEvent } from './thread-supervisor.ts';
import { listenerThreadCount } from './workers.ts';

export type { RestartEvent } from './thread-supervisor.ts';

export interface RuntimeNotifications {
  healthChanged?: (event: HealthEvent) => void;
  restarting?: (event: RestartEvent) => void;
  /** Every listener thread is bound: the ports are known (port 0, a handed-over socket). */
  listening?: (ports: number[]) => void;
}

/** What a hot restart's successor starts from: its predecessor's listening sockets and ticket keys. */
export interface HandedOver {
  sockets?: InheritedSockets;
  ticketKeys?: HandedOverKeys;
}

export class ActorRuntime {
  #config: Config;
  /** Each listener's certificates, as the main thread last read them (null: plain). */
  #tls: (ListenerTls | null)[] = [];
  #init: ActorInit;
  readonly #log: Logger;
  readonly #counter = newCounterBuffer();
  readonly #inFlight: SharedArrayBuffer;
  /** The backend set as configured plus added at runtime: what a restarted pool starts from. */
  readonly #backendSpecs = new Map<BackendId, BackendSpec>();
  #backendsSeeded = false;
  readonly #supervision: ThreadSupervisor;
  readonly #pool: PoolLink;
  readonly #healthChecker: HealthCheckerLink;
  readonly #listeners: ListenerGroup;
  readonly #ticketKeys: TicketKeyRotation;

  constructor(
    config: Config,
    log: LogOptions,
    logger: Logger,
    notify: RuntimeNotifications = {},
    handedOver: HandedOver = {},
  ) {
    this.#config = config;
    // A row per listener thread (their count cannot change without a restart of the process).
    this.#inFlight = InFlight.buffer(MAX_BACKEND_SLOTS, listenerThreadCount(config.proxy.workers));
    this.#init = { config, log };
    this.#log = logger;
    this.#supervision = new ThreadSupervisor(logger, {
      restart: (kind, id) => void this.#restart(kind, id),
      giveUp: ({ actor, id, message }) => this.#linkOf(actor).gaveUp({ id, message }),
      failed: (thread) => {
        if (thread.kind === 'pool') this.#pool.failed();
        if (thread.kind === 'listener') this.#listeners.markDrained(thread.id);
      },
      heartbeat: (thread, answered) => {
        if (thread.kind === 'pool') this.#pool.heartbeat(answered);
      },
      restarting: (event) => notify.restarting?.(event),
    });
    const supervision = this.#supervision;
    const config$ = () => this.#config;
    const actorInit = () => this.#actorInit();
    this.#pool = new PoolLink({
      supervision,
      log: logger,
      config: config$,
      init: actorInit,
      published: () => {
        for (const listener of this.#listeners.started) this.#listeners.sendSnapshot(listener);
        this.#updatePoolHealth();
      },
      ejected: (backend) => this.#healthChecker.tell('markUnhealthy', (api) => api.markUnhealthy(backend)),
      // DNS changed a set: the checker probes the new backends at once (they are unroutable until they pass).
      membershipChanged: (added, removed) => {
        for (const id of removed) this.#healthChecker.tell('removeBackend', (api) => api.removeBackend(id));
        for (const spec of added) this.#healthChecker.tell('addBackend', (api) => api.addBackend(spec));
      },
      answeringChanged: () => this.#updatePoolHealth(),
    });
    this.#healthChecker = new HealthCheckerLink({
      supervision,
      log: logger,
      init: actorInit,
      knownHealthy: () => this.#pool.knownHealthy(),
      discovered: () => this.#pool.discovered,
      changed: (event) => {
        this.#tellPool('applyHealth', (api) => api.applyHealth(event.observation));
        notify.healthChanged?.(event);
      },
    });
    this.#listeners = new ListenerGroup(
      {
        supervision,
        log: logger,
        config: config$,
        init: () => this.#init,
        connectionCounter: this.#counter,
        inFlight: this.#inFlight,
        snapshot: () => this.#pool.snapshot,
        poolStarted: this.#pool.started,
        passive: (report) => this.#tellPool('reportPassive', (api) => api.reportPassive(report)),
        appliedChanged: () => this.#updatePoolHealth(),
        listening: (ports) => notify.listening?.(ports),
        tls: () => this.#tls,
        ticketKeys: () => this.#ticketKeys.keys,
        activeConnections: () => this.activeConnections(),
      },
      handedOver.sockets,
    );
    this.#ticketKeys = new TicketKeyRotation((keys) => {
      this.#listeners.tellStarted('setTicketKeys', (api) => api.setTicketKeys(keys));
      this.#log.info({ event: 'ticket_keys_rotated' }, 'Session-ticket keys rotated (the previous key still decrypts)');
    }, handedOver.ticketKeys);
    this.#ticketKeys.start();
  }

  /** The session-ticket keys, and when the current one was made: what a hot restart's successor starts from. */
  get ticketKeyHandover(): HandedOverKeys {
    return this.#ticketKeys.handover;
  }

  /** Implementations for `lifecycleMachine.provide({ actors })`. */
  machineActors() {
    return {
      pool: this.#pool.machineActor(),
      healthChecker: this.#healthChecker.machineActor(),
      listeners: this.#listeners.machineActor(),
    };
  }

  /** The phase message to every listener (the machine's announce actions). */
  announce(state: LifecycleState): void {
    this.#listeners.announce(state);
  }

  /** Every actor thread: kind, id, whether it runs, and how often it was restarted. */
  workers(): WorkerRow[] {
    const all = [this.#pool.thread, this.#healthChecker.thread, ...this.#listeners.threads];
    const threads = all.filter((t) => t !== undefined);
    const restartsOf = (kind: ActorKind, id: number) => this.#supervision.restartsOf(kind, id);
    return threads.map((t) => ({ id: t.id, kind: t.kind, alive: t.alive, restarts: restartsOf(t.kind, t.id) }));
  }

  /** The backends of the latest snapshot, with their in-flight requests over all listener threads. */
  backends(): BackendRow[] {
    const inFlight = new InFlight(this.#inFlight);
    return (this.#pool.snapshot?.backends ?? []).map((b) => ({
      upstream: b.upstream,
      address: b.address,
      port: b.port,
      weight: b.weight,
      healthy: b.healthy,
      enabled: b.enabled,
      ejected: b.ejected,
      in_flight: inFlight.get(b.slot),
    }));
  }

  /** Each upstream's source of backends, for `/status`: the fixed list, or DNS with its last answer. */
  upstreams(): UpstreamStatus[] {
    const iso = (at: number) => new Date(at).toISOString();
    return upstreamGroups(this.#config).map((group) => {
      if (!group.discovery) {
        const addresses = group.backends.map(backendId);
        const none = { dns: null, type: null, resolved_at: null, last_error: null };
        return { name: group.name, source: 'static', ...none, addresses };
      }
      const known = this.#pool.dnsStatus(group.name);
      const error = known?.last_error ?? null;
      const resolvedAt = known?.resolved_at ?? null;
      return {
        name: group.name,
        source: 'dns',
        dns: group.discovery.dns,
        type: group.discovery.type,
        resolved_at: resolvedAt === null ? null : iso(resolvedAt),
        last_error: error && { code: error.code, message: error.message, at: iso(error.at) },
        addresses: known?.addresses ?? [],
      };
    });
  }

  /** DNS resolution attempts per upstream and result, since start. */
  dnsResolutions(): { upstream: string; result: string; count: number }[] {
    return this.#pool.dnsResolutions();
  }

  rejectedConnections(): number {
    return readCounters(this.#counter).rejected;
  }

  /** Every thread's prom-client registry as JSON (threads that cannot answer are left out). */
  async threadMetrics(): Promise<object[][]> {
    const checker = this.#healthChecker.thread;
    const calls = [
      ...this.#listeners.threads.filter((l) => l.alive).map((l) => l.call((api) => api.metrics())),
      ...(checker?.alive ? [checker.call((api) => api.metrics())] : []),
    ];
    const settled = await Promise.allSettled(calls);
    return settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }

  /** Every backend's latest probe result, from the health checker (undefined: it does not answer). */
  lastProbes(deadlineMs?: number): Promise<ProbeReport[] | undefined> {
    return this.#healthChecker.lastProbes(deadlineMs);
  }

  /** SIGUSR1: every thread reopens its log file. */
  reopenLogs(): void {
    // A thread still starting opens its log file as it starts; it reopens it too.
    for (const l of this.#listeners.threads) l.tell(this.#log, 'reopenLog', (api) => api.reopenLog());
    this.#tellPool('reopenLog', (api) => api.reopenLog());
    this.#healthChecker.tell('reopenLog', (api) => api.reopenLog());
  }

  get poolHealthy(): boolean {
    return this.#listeners.status.poolHealthy;
  }

  /** Adds a backend through the pool actor (unhealthy until its first passing check). */
  async addBackend(spec: BackendSpec): Promise<boolean> {
    const pool = this.#pool.thread;
    if (!pool) throw new Error('the pool actor is not running');
    const added = await pool.call((api) => api.addBackend(spec));
    if (added) {
      this.#backendSpecs.set(backendId(spec), spec);
      await this.#healthChecker.thread?.call((api) => api.addBackend(spec));
    }
    return added;
  }

  /** Removes a backend; requests already on it finish. False when the pool did not have it. */
  async removeBackend(id: BackendId): Promise<boolean> {
    const pool = this.#pool.thread;
    if (!pool) throw new Error('the pool actor is not running');
    const removed = await pool.call((api) => api.removeBackend(id));
    if (removed) {
      this.#backendSpecs.delete(id);
      await this.#healthChecker.thread?.call((api) => api.removeBackend(id));
    }
    return removed;
  }

  /** The port of the first listener (known once the first thread bound it, which matters for port 0). */
  get port(): number | undefined {
    return this.#listeners.ports?.[0];
  }

  /** Every listener's port, in listenSpecs order, once bound. */
  get ports(): number[] | undefined {
    return this.#listeners.ports;
  }

  /** The certificates every TLS listener serves. */
  certificates(): CertificateInfo[] {
    return this.#tls.flatMap((tls) => tls?.certificates ?? []);
  }

  /** The certificates the listener threads start with (read by the supervisor before they start). */
  set certificateMaterial(tls: (ListenerTls | null)[]) {
    this.#tls = tls;
  }

  get snapshot(): PoolSnapshot | undefined {
    return this.#pool.snapshot;
  }

  /** Live client connections summed over every listener thread. */
  activeConnections(): number {
    return readCounters(this.#counter).live;
  }

  /**
   * A reload: every actor takes the new config, and the backend set becomes
   * the config's (backends added at runtime are dropped, as a reloaded nginx
   * forgets them too).
   */
  async reconfigure(config: Config, tls: (ListenerTls | null)[]): Promise<Failure[]> {
    this.#config = config;
    this.#tls = tls;
    this.#init = { ...this.#init, config };
    this.#backendSpecs.clear();
    this.#backendsSeeded = true;
    for (const spec of config.backends) this.#backendSpecs.set(backendId(spec), spec);
    this.#pool.forgetUndiscovered(config);
    this.#tellPool('reconfigure', (api) => api.reconfigure(config));
    this.#healthChecker.tell('reconfigure', (api) => api.reconfigure(config));
    // A listener that refuses a certificate keeps the ones it has, and says why: the reload reports it.
    const applyTo = (l: ActorThread<ListenerApi>) =>
      l
        .call((api): Promise<TlsApplied> => Promise.resolve(api.reconfigure(config, tls)))
        .catch((error: unknown): TlsApplied => {
          l.logFailure(this.#log, 'reconfigure')(error);
          return { ok: true };
        });
    const applied = await Promise.all(this.#listeners.started.map(applyTo));
    return applied.flatMap((result) => (result.ok ? [] : [result.failure]));
  }

  /** Every live listener thread's listening sockets, per listener, for a hot restart's successor. */
  async listeningFds(): Promise<InheritedListener[]> {
    const live = this.#listeners.threads.filter((l) => l.alive);
    const fdsOf = (l: ActorThread<ListenerApi>) =>
      l
        .call((api) => api.listeningFds())
        .catch((error: unknown) => {
          l.logFailure(this.#log, 'listeningFds')(error);
          return [] as number[][];
        });
    const perThread = await Promise.all(live.map(fdsOf));
    const ports = this.#listeners.ports;
    return listenSpecs(this.#config).map((spec, index) => ({
      host: spec.host,
      port: ports?.[index] ?? spec.port,
      fds: perThread.flatMap((fds) => fds[index] ?? []),
    }));
  }

  /** Destroy the client connections still open; returns how many. */
  async forceCloseConnections(): Promise<number> {
    // A thread that cannot answer is terminated at teardown, which closes its connections too.
    const closeOn = (l: ActorThread<ListenerApi>) =>
      l
        .call((api) => api.forceClose())
        .catch((error: unknown) => {
          l.logFailure(this.#log, 'forceClose')(error);
          return 0;
        });
    const counts = await Promise.all(this.#listeners.threads.map(closeOn));
    return counts.reduce((sum, n) => sum + n, 0);
  }

  /** Let every thread flush, then end it: listeners first, the pool last. */
  async stopAll(): Promise<void> {
    this.#supervision.closing = true;
    this.#ticketKeys.stop();
    this.#pool.abandonStart();
    await this.#listeners.stopAll();
    await this.#healthChecker.thread?.stop((api) => api.stop());
    await this.#pool.thread?.stop((api) => api.stop());
  }

  #linkOf(kind: ActorKind): PoolLink | HealthCheckerLink | ListenerGroup {
    switch (kind) {
      case 'pool':
        return this.#pool;
      case 'health-checker':
        return this.#healthChecker;
      case 'listener':
        return this.#listeners;
    }
  }

  #tellPool(call: string, invoke: (api: Comlink.Remote<PoolApi>) => Promise<unknown>): void {
    this.#pool.thread?.tell(this.#log, call, invoke);
  }

  /**
   * The backends actors start from. Read from the config when the first actor
   * starts, not before: an embedding program may add backends until serve().
   */
  #startingBackends(): BackendSpec[] {
    if (!this.#backendsSeeded) {
      this.#backendsSeeded = true;
      for (const spec of this.#config.backends) this.#backendSpecs.set(backendId(spec), spec);
    }
    return [...this.#backendSpecs.values()];
  }

  /** What the pool and health checker start with: the current backend set. */
  #actorInit(): ActorInit {
    return { ...this.#init, config: { ...this.#config, backends: this.#startingBackends() } };
  }

  /** A failed thread's backoff has passed: start it again, from what is known now. */
  async #restart(kind: ActorKind, id: number): Promise<void> {
    switch (kind) {
      case 'pool': {
        this.#pool.start();
        return;
      }
      case 'health-checker': {
        this.#healthChecker.start();
        return;
      }
      case 'listener':
        return this.#listeners.restart(id);
    }
  }

  /**
   * The pool answers its heartbeat and every live listener holds a snapshot.
   * Not necessarily the newest: a listener one update behind still routes
   * correctly, and /ready must not flap on every health flip.
   */
  #updatePoolHealth(): void {
    const published = this.#pool.snapshot !== undefined && this.#listeners.allHoldSnapshot;
    this.#listeners.setPoolHealthy(this.#pool.answering && published);
  }
}
