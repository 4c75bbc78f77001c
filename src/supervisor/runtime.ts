/**
 * The real actors behind the names the lifecycle machine invokes (`pool`,
 * `healthChecker`, `listeners`), each a bridge from an XState callback actor
 * to worker threads, plus the wiring between them: health flips go to the
 * pool, the pool's snapshots go to every listener, the lifecycle state goes
 * to every listener. Only control crosses threads; requests never do.
 *
 * A thread that fails is restarted by the ThreadSupervisor; this file
 * decides what it starts from (the pool from the backends and health known
 * now), while the others keep serving.
 */
import * as Comlink from 'comlink';
import { fromCallback } from 'xstate';
import type { Config } from '../config/schema.ts';
import { newCounterBuffer, readCounters } from '../listener/connections.ts';
import type { Logger, LogOptions } from '../log.ts';
import type { LifecycleEvent, LifecycleState, ListenerCommand } from '../machines/lifecycle.ts';
import { MAX_BACKEND_SLOTS } from '../pool/backend-pool.ts';
import { discoveredGroups, startupBackends, upstreamGroups } from '../config/upstream-groups.ts';
import { InFlight } from '../pool/balancers/in-flight.ts';
import { backendId, type ActorKind, type PoolSeed } from '../protocol.ts';
import type {
  ActorInit,
  BackendId,
  BackendSpec,
  DnsStatus,
  HealthCheckerApi,
  HealthEvent,
  ListenerApi,
  ListenerEvent,
  ListenerStartResult,
  ListenerStatus,
  PoolApi,
  PoolEvent,
  PoolSnapshot,
  ProbeReport,
} from '../protocol.ts';
import { assertNever } from '../protocol.ts';
import type { ActorThread } from './actor-thread.ts';
import { ThreadSupervisor, type RestartEvent } from './thread-supervisor.ts';
import { listenerThreadCount } from './workers.ts';
import { assignInherited, type InheritedSockets } from './hot-restart.ts';

type SendBack = (event: LifecycleEvent) => void;

export type { RestartEvent } from './thread-supervisor.ts';

/** One upstream in `/status`: where its backends come from and, for DNS, the last answer. */
export interface UpstreamStatus {
  name: string;
  source: 'static' | 'dns';
  dns: string | null;
  type: 'A' | 'SRV' | null;
  resolved_at: string | null;
  last_error: { code: string; message: string; at: string } | null;
  addresses: BackendId[];
}

export interface RuntimeNotifications {
  stoppedAccepting?: () => void;
  healthChanged?: (event: HealthEvent) => void;
  restarting?: (event: RestartEvent) => void;
  /** Every listener thread is bound: the port is known (port 0, a handed-over socket). */
  listening?: (port: number) => void;
}

export class ActorRuntime {
  #config: Config;
  #init: ActorInit;
  readonly #log: Logger;
  readonly #notify: RuntimeNotifications;
  readonly #counter = newCounterBuffer();
  readonly #inFlight: SharedArrayBuffer;
  /** The backend set as configured plus added at runtime: what a restarted pool starts from. */
  readonly #backendSpecs = new Map<BackendId, BackendSpec>();
  #backendsSeeded = false;
  /** What DNS gave (the pool's membership events): what a restarted pool or checker starts from. */
  readonly #discovered = new Map<BackendId, BackendSpec>();
  /** The last resolution of each DNS upstream, and the attempts per result (`ok`, `ENOTFOUND`…). */
  readonly #dnsStatus = new Map<string, DnsStatus>();
  readonly #dnsResolutions = new Map<string, Map<string, number>>();
  /** The snapshot version each listener last confirmed it applied. */
  readonly #applied = new Map<number, number>();
  readonly #supervision: ThreadSupervisor;
  #heartbeatOk = false;
  #pool: ActorThread<PoolApi> | undefined;
  #healthChecker: ActorThread<HealthCheckerApi> | undefined;
  readonly #listeners: ActorThread<ListenerApi>[] = [];
  readonly #undrained = new Set<number>();
  #snapshot: PoolSnapshot | undefined;
  #status: ListenerStatus = { state: 'starting', poolHealthy: false };
  #port: number | undefined;
  #sendBack: SendBack = () => {};
  #listenersStarting: Promise<void> = Promise.resolve();
  /** Settles true once the pool actor has started (and published its set), false if it failed. */
  readonly #poolStarted: Promise<boolean>;
  #settlePoolStarted: (started: boolean) => void = () => {};

  /** Sockets handed over by the process this one replaces; used by the first start only. */
  #inherited: InheritedSockets | undefined;

  constructor(config: Config, log: LogOptions, logger: Logger, notify: RuntimeNotifications = {}, inherited?: InheritedSockets) {
    this.#config = config;
    // A row per listener thread (their count cannot change without a restart of the process).
    this.#inFlight = InFlight.buffer(MAX_BACKEND_SLOTS, listenerThreadCount(config.proxy.workers));
    this.#inherited = inherited;
    this.#init = { config, log };
    this.#log = logger;
    this.#notify = notify;
    this.#poolStarted = new Promise((resolve) => (this.#settlePoolStarted = resolve));
    this.#supervision = new ThreadSupervisor(logger, {
      restart: (kind, id) => void this.#restart(kind, id),
      giveUp: ({ actor, id, message }) => this.#sendBack({ type: 'WORKER_FAILED', actor, id, message }),
      failed: (thread) => {
        if (thread.kind === 'pool') {
          this.#heartbeatOk = false;
          this.#updatePoolHealth();
        }
        if (thread.kind === 'listener') this.#markDrained(thread.id);
      },
      heartbeat: (thread, answered) => {
        if (thread.kind !== 'pool' || answered === this.#heartbeatOk) return;
        this.#heartbeatOk = answered;
        this.#updatePoolHealth();
      },
      restarting: (event) => this.#notify.restarting?.(event),
    });
  }

  /** Set once teardown begins: no new thread may start after it. */
  get #closing(): boolean {
    return this.#supervision.closing;
  }

  /** Every actor thread: kind, id, whether it runs, and how often it was restarted. */
  workers(): { id: number; kind: ActorKind; alive: boolean; restarts: number }[] {
    const threads = [this.#pool, this.#healthChecker, ...this.#listeners].filter((t) => t !== undefined);
    return threads.map((t) => ({ id: t.id, kind: t.kind, alive: t.alive, restarts: this.#supervision.restartsOf(t.kind, t.id) }));
  }

  /** The backends of the latest snapshot, with their in-flight requests over all listener threads. */
  backends(): { upstream: string; address: string; port: number; weight: number; healthy: boolean; enabled: boolean; ejected: boolean; in_flight: number }[] {
    const inFlight = new InFlight(this.#inFlight);
    return (this.#snapshot?.backends ?? []).map((b) => ({
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
    const iso = (at: number | null) => (at === null ? null : new Date(at).toISOString());
    return upstreamGroups(this.#config).map((group) => {
      if (!group.discovery) {
        const addresses = group.backends.map(backendId);
        const none = { dns: null, type: null, resolved_at: null, last_error: null };
        return { name: group.name, source: 'static', ...none, addresses };
      }
      const known = this.#dnsStatus.get(group.name);
      const error = known?.last_error ?? null;
      return {
        name: group.name,
        source: 'dns',
        dns: group.discovery.dns,
        type: group.discovery.type,
        resolved_at: iso(known?.resolved_at ?? null),
        last_error: error && { code: error.code, message: error.message, at: iso(error.at)! },
        addresses: known?.addresses ?? [],
      };
    });
  }

  /** DNS resolution attempts per upstream and result, since start. */
  dnsResolutions(): { upstream: string; result: string; count: number }[] {
    return [...this.#dnsResolutions].flatMap(([upstream, results]) =>
      [...results].map(([result, count]) => ({ upstream, result, count })),
    );
  }

  rejectedConnections(): number {
    return readCounters(this.#counter).rejected;
  }

  /** Every thread's prom-client registry as JSON (threads that cannot answer are left out). */
  async threadMetrics(): Promise<object[][]> {
    const calls = [
      ...this.#listeners.filter((l) => l.alive).map((l) => l.call((api) => api.metrics())),
      ...(this.#healthChecker?.alive ? [this.#healthChecker.call((api) => api.metrics())] : []),
    ];
    const settled = await Promise.allSettled(calls);
    return settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }

  /**
   * Every backend's latest probe result, from the health checker; undefined
   * when it is not running or does not answer within `deadlineMs`.
   */
  async lastProbes(deadlineMs = 1_000): Promise<ProbeReport[] | undefined> {
    const checker = this.#healthChecker;
    if (!checker?.alive) return undefined;
    const deadline = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), deadlineMs).unref());
    return Promise.race([checker.call((api) => api.lastProbes()).catch(() => undefined), deadline]);
  }

  /** SIGUSR1: every thread reopens its log file. */
  reopenLogs(): void {
    for (const l of this.#listeners) void l.call((api) => api.reopenLog()).catch(() => {});
    void this.#pool?.call((api) => api.reopenLog()).catch(() => {});
    void this.#healthChecker?.call((api) => api.reopenLog()).catch(() => {});
  }

  get poolHealthy(): boolean {
    return this.#status.poolHealthy;
  }

  /** Adds a backend through the pool actor (unhealthy until its first passing check). */
  async addBackend(spec: BackendSpec): Promise<boolean> {
    const pool = this.#pool;
    if (!pool) throw new Error('the pool actor is not running');
    const added = await pool.call((api) => api.addBackend(spec));
    if (added) {
      this.#backendSpecs.set(backendId(spec), spec);
      await this.#healthChecker?.call((api) => api.addBackend(spec));
    }
    return added;
  }

  /** Removes a backend; requests already on it finish. False when the pool did not have it. */
  async removeBackend(id: BackendId): Promise<boolean> {
    const pool = this.#pool;
    if (!pool) throw new Error('the pool actor is not running');
    const removed = await pool.call((api) => api.removeBackend(id));
    if (removed) {
      this.#backendSpecs.delete(id);
      await this.#healthChecker?.call((api) => api.removeBackend(id));
    }
    return removed;
  }

  /** The port every listener serves (known once the first one bound, which matters for port 0). */
  get port(): number | undefined {
    return this.#port;
  }

  get snapshot(): PoolSnapshot | undefined {
    return this.#snapshot;
  }

  /** Live client connections summed over every listener thread. */
  activeConnections(): number {
    return readCounters(this.#counter).live;
  }

  setLifecycleState(state: LifecycleState): void {
    this.#broadcastStatus({ ...this.#status, state });
  }

  /** Implementations for `lifecycleMachine.provide({ actors })`. */
  machineActors() {
    return {
      pool: fromCallback(({ sendBack }) => {
        this.#sendBack = sendBack;
        this.#startPool();
        return () => {};
      }),
      healthChecker: fromCallback(({ sendBack }) => {
        this.#sendBack = sendBack;
        this.#startHealthChecker();
        return () => {};
      }),
      listeners: fromCallback<ListenerCommand>(({ sendBack, receive }) => {
        this.#sendBack = sendBack;
        receive((command) => this.#commandListeners(command));
        this.#listenersStarting = this.#startListeners().catch((error: Error) => {
          if (!this.#closing) sendBack({ type: 'WORKER_FAILED', actor: 'listener', id: -1, message: error.message });
        });
        return () => {};
      }),
    };
  }

  /**
   * A reload: every actor takes the new config, and the backend set becomes
   * the config's (backends added at runtime are dropped, as a reloaded nginx
   * forgets them too).
   */
  reconfigure(config: Config): void {
    this.#config = config;
    this.#init = { ...this.#init, config };
    this.#backendSpecs.clear();
    this.#backendsSeeded = true;
    for (const spec of config.backends) this.#backendSpecs.set(backendId(spec), spec);
    // The pool keeps what DNS gave the upstreams that still resolve from DNS; the others' sets go.
    const discovered = discoveredGroups(config);
    for (const [id, spec] of this.#discovered) if (!discovered.has(spec.upstream ?? '')) this.#discovered.delete(id);
    for (const name of [...this.#dnsStatus.keys()]) if (!discovered.has(name)) this.#dnsStatus.delete(name);
    void this.#pool?.call((api) => api.reconfigure(config)).catch(() => {});
    void this.#healthChecker?.call((api) => api.reconfigure(config)).catch(() => {});
    for (const l of this.#listeners) void l.call((api) => api.reconfigure(config)).catch(() => {});
  }

  /** Every live listener's listening sockets, for a hot restart's successor. */
  async listeningFds(): Promise<number[]> {
    const live = this.#listeners.filter((l) => l.alive);
    const fds = await Promise.all(live.map((l) => l.call((api) => api.listeningFds()).catch(() => [] as number[])));
    return fds.flat();
  }

  /** Destroy the client connections still open; returns how many. */
  async forceCloseConnections(): Promise<number> {
    const counts = await Promise.all(this.#listeners.map((l) => l.call((api) => api.forceClose()).catch(() => 0)));
    return counts.reduce((sum, n) => sum + n, 0);
  }

  /** Let every thread flush, then end it: listeners first, the pool last. */
  async stopAll(): Promise<void> {
    this.#supervision.closing = true;
    // A pool that never finished starting must not hold the listeners' start-up loop.
    this.#settlePoolStarted(false);
    // A listener still binding finishes first, so that it is stopped too.
    await this.#listenersStarting;
    await Promise.all(this.#listeners.map((l) => l.stop((api) => api.stop())));
    await this.#healthChecker?.stop((api) => api.stop());
    await this.#pool?.stop((api) => api.stop());
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

  /** Backends the latest snapshot knows healthy: where a restarted pool or checker starts from. */
  #knownHealthy(): BackendId[] {
    return (this.#snapshot?.backends ?? []).filter((b) => b.healthy).map((b) => b.id);
  }

  /** A failed thread's backoff has passed: start it again, from what is known now. */
  async #restart(kind: ActorKind, id: number): Promise<void> {
    switch (kind) {
      case 'pool':
        return this.#startPool();
      case 'health-checker':
        return this.#startHealthChecker();
      case 'listener': {
        const listener = await this.#startListener(id, this.#port ?? this.#config.proxy.listen_port, true);
        if (listener) this.#log.info({ actor: kind, id }, 'listener actor restarted');
        return;
      }
    }
  }

  // ---- the pool ---------------------------------------------------------------

  #startPool(): void {
    const pool = this.#supervision.spawn<PoolApi>('pool', 0);
    const restarted = this.#pool !== undefined;
    this.#pool = pool;
    if (restarted) this.#supervision.restarting(pool);
    const published = (snapshot: PoolSnapshot) => {
      // Events travel on their own channel: never let an older snapshot replace a newer one.
      if (this.#snapshot && this.#snapshot.version >= snapshot.version) return;
      this.#snapshot = snapshot;
      for (const listener of this.#listeners) this.#sendSnapshot(listener);
      this.#updatePoolHealth();
      this.#sendBack({ type: 'BACKENDS_CHANGED', healthy: startupBackends(this.#config, snapshot), total: snapshot.backends.length });
    };
    const onEvent = (event: PoolEvent) => {
      switch (event.type) {
        case 'pool.published':
          return published(event.snapshot);
        case 'pool.ejected':
          void this.#healthChecker?.call((api) => api.markUnhealthy(event.backend)).catch(() => {});
          return;
        case 'pool.membership':
          return this.#membershipChanged(event.added, event.removed);
        case 'pool.dns':
          return this.#dnsResolved(event.status, event.result);
        default:
          assertNever(event);
      }
    };
    // A restarted pool starts from the backends and health known now, and keeps counting versions up.
    const seed: PoolSeed = {
      health: this.#knownHealthy().map((backend) => ({ backend, healthy: true, reason: 'before restart' })),
      version: (this.#snapshot?.version ?? -1) + 1,
      discovered: [...this.#discovered.values()],
    };
    pool.call((api) => api.start(this.#actorInit(), Comlink.proxy(onEvent), seed)).then(
      (first) => {
        published(first);
        // Answering its start counts as the first heartbeat.
        this.#heartbeatOk = true;
        this.#supervision.running(pool);
        this.#updatePoolHealth();
        this.#settlePoolStarted(true);
        if (restarted) this.#log.info({ actor: 'pool' }, 'pool actor restarted');
      },
      (error: Error) => {
        this.#settlePoolStarted(false);
        // A start that threw leaves a thread that cannot serve: end it, as a failure.
        pool.kill(`start failed: ${error.message}`);
      },
    );
  }

  /** DNS changed a set: the checker probes the new backends at once (they are unroutable until they pass). */
  #membershipChanged(added: BackendSpec[], removed: BackendId[]): void {
    for (const id of removed) this.#discovered.delete(id);
    for (const spec of added) this.#discovered.set(backendId(spec), spec);
    const checker = this.#healthChecker;
    if (!checker) return;
    for (const id of removed) void checker.call((api) => api.removeBackend(id)).catch(() => {});
    for (const spec of added) void checker.call((api) => api.addBackend(spec)).catch(() => {});
  }

  #dnsResolved(status: DnsStatus, result: string): void {
    this.#dnsStatus.set(status.upstream, status);
    const results = this.#dnsResolutions.get(status.upstream) ?? new Map<string, number>();
    results.set(result, (results.get(result) ?? 0) + 1);
    this.#dnsResolutions.set(status.upstream, results);
  }

  #sendSnapshot(listener: ActorThread<ListenerApi>): void {
    const snapshot = this.#snapshot;
    if (!snapshot) return;
    void listener.call((api) => api.applySnapshot(snapshot)).then(
      (version) => {
        this.#applied.set(listener.id, version);
        this.#updatePoolHealth();
      },
      () => {},
    );
  }

  /**
   * The pool answers its heartbeat and every live listener holds a snapshot.
   * Not necessarily the newest: a listener one update behind still routes
   * correctly, and /ready must not flap on every health flip.
   */
  #updatePoolHealth(): void {
    const published = this.#snapshot !== undefined && this.#listeners.every((l) => !l.alive || this.#applied.has(l.id));
    const poolHealthy = this.#heartbeatOk && published && (this.#pool?.alive ?? false);
    if (poolHealthy !== this.#status.poolHealthy) this.#broadcastStatus({ ...this.#status, poolHealthy });
  }

  // ---- the health checker -----------------------------------------------------

  #startHealthChecker(): void {
    const checker = this.#supervision.spawn<HealthCheckerApi>('health-checker', 0);
    const restarted = this.#healthChecker !== undefined;
    this.#healthChecker = checker;
    if (restarted) this.#supervision.restarting(checker);
    const onEvent = (event: HealthEvent) => {
      void this.#pool?.call((api) => api.applyHealth(event.observation)).catch(() => {});
      this.#notify.healthChanged?.(event);
    };
    const discovered = [...this.#discovered.values()];
    checker.call((api) => api.start(this.#actorInit(), Comlink.proxy(onEvent), this.#knownHealthy(), discovered)).then(
      () => {
        this.#supervision.running(checker);
        if (restarted) this.#log.info({ actor: 'health-checker' }, 'health-checker actor restarted');
      },
      (error: Error) => checker.kill(`start failed: ${error.message}`),
    );
  }

  // ---- the listeners ----------------------------------------------------------

  /**
   * Every listener thread boots (loads its modules) at once; they then bind
   * one after another: the first binds the configured port, the others bind
   * the port it got (so port 0 means one port for all).
   * Each is started only once the pool has published its set, which it gets
   * with its start: no listener ever serves without a snapshot.
   */
  async #startListeners(): Promise<void> {
    let port = this.#config.proxy.listen_port;
    const count = listenerThreadCount(this.#config.proxy.workers);
    const handedOver = this.#takeInherited(count);
    if (handedOver) port = handedOver.port;
    const threads = Array.from({ length: count }, (_, id) => this.#spawnListener(id, false));
    for (let id = 0; id < count && !this.#closing; id++) {
      const listener = await this.#startListener(id, port, false, handedOver?.fdsOf(id), threads[id]);
      if (!listener) return;
      port = this.#port ?? port;
    }
    if (this.#closing) return;
    this.#log.info({ host: this.#config.proxy.listen_host, port, listeners: count, handed_over: handedOver !== undefined }, `Listening on ${this.#config.proxy.listen_host}:${port}`);
    this.#notify.listening?.(port);
    this.#sendBack({ type: 'LISTENERS_BOUND' });
  }

  /**
   * In a hot restart's successor: which inherited sockets each listener
   * thread serves (spread over them when the thread count changed). None when
   * the listen address changed: the old sockets are closed, the new address bound.
   */
  #takeInherited(count: number): { port: number; fdsOf(id: number): number[] } | undefined {
    const inherited = this.#inherited;
    this.#inherited = undefined;
    if (!inherited) return undefined;
    const { listen_host: host, listen_port: port } = this.#config.proxy;
    const assigned = assignInherited(inherited, host, port, count);
    if (!assigned) this.#log.warn({ from: `${inherited.host}:${inherited.port}`, to: `${host}:${port}` }, 'the listen address changed: binding the new one');
    return assigned;
  }

  /** A new thread for listener `id`, booting; started by #startListener. */
  #spawnListener(id: number, restart: boolean): ActorThread<ListenerApi> {
    const listener = this.#supervision.spawn<ListenerApi>('listener', id);
    this.#listeners[id] = listener;
    this.#applied.delete(id);
    // A restarted thread that fails while starting counts against its restart budget.
    if (restart) this.#supervision.restarting(listener);
    return listener;
  }

  /** Starts listener `id` on `port`; undefined when it could not (reported already). */
  async #startListener(
    id: number,
    port: number,
    restart: boolean,
    inheritedFds?: number[],
    listener = this.#spawnListener(id, restart),
  ): Promise<ActorThread<ListenerApi> | undefined> {
    // The thread boots meanwhile; a failed pool has already been reported.
    if (!(await this.#poolStarted) || this.#closing) return undefined;
    const onEvent = (event: ListenerEvent) => {
      switch (event.type) {
        case 'listener.drained':
          return this.#markDrained(event.id);
        case 'listener.passive':
          return void this.#pool?.call((api) => api.reportPassive(event.report)).catch(() => {});
        default:
          assertNever(event);
      }
    };
    const snapshot = this.#snapshot;
    const init = { ...this.#init, id, port, connectionCounter: this.#counter, inFlight: this.#inFlight, snapshot, status: this.#status, inheritedFds };
    let result: ListenerStartResult;
    try {
      result = await listener.call((api) => api.start(init, Comlink.proxy(onEvent)) as Promise<ListenerStartResult>);
    } catch (error) {
      if (restart) return undefined; // its failure was reported, and counts against its restart budget
      throw error;
    }
    if (!result.ok && 'setup' in result) {
      const { code, message } = result.setup;
      const line = { actor: 'listener', id, code, reason: message };
      this.#log.error(line, `listener actor ${id} failed while starting: ${message}`);
      // A thread that cannot set itself up cannot serve: ended, and (restarted) counted against its budget.
      if (restart) listener.kill(`${code}: ${message}`);
      else this.#sendBack({ type: 'WORKER_FAILED', actor: 'listener', id, message });
      return undefined;
    }
    if (!result.ok) {
      if (restart) {
        listener.kill(`${result.failure.code}: ${result.failure.message}`);
      } else {
        this.#sendBack({ type: 'LISTEN_FAILED', code: result.failure.code, message: result.failure.message });
      }
      return undefined;
    }
    this.#port = result.port;
    if (snapshot) this.#applied.set(id, snapshot.version);
    // Whatever changed while it was starting.
    if (this.#snapshot !== snapshot) this.#sendSnapshot(listener);
    void listener.call((api) => api.setStatus(this.#status)).catch(() => {});
    this.#supervision.running(listener);
    this.#updatePoolHealth();
    return listener;
  }

  #commandListeners(command: ListenerCommand): void {
    switch (command.type) {
      case 'BEGIN_DRAIN':
        this.#supervision.draining = true;
        for (const l of this.#listeners) void l.call((api) => api.beginDrain()).catch(() => {});
        return;
      case 'CLOSE_LISTENING': {
        this.#supervision.draining = true;
        const live = this.#listeners.filter((l) => l.alive);
        for (const l of live) this.#undrained.add(l.id);
        if (live.length === 0) return this.#sendBack({ type: 'CONNECTIONS_DRAINED' });
        this.#log.info({ listeners: live.length }, 'Closing the listening sockets');
        void Promise.all(live.map((l) => l.call((api) => api.closeListening()).catch(() => {}))).then(() => {
          this.#log.info({ listeners: live.length, active: this.activeConnections() }, 'Stopped accepting new connections');
          this.#notify.stoppedAccepting?.();
        });
        return;
      }
    }
  }

  #markDrained(id: number): void {
    if (!this.#undrained.delete(id)) return;
    if (this.#undrained.size === 0) this.#sendBack({ type: 'CONNECTIONS_DRAINED' });
  }

  #broadcastStatus(status: ListenerStatus): void {
    this.#status = status;
    for (const l of this.#listeners) void l.call((api) => api.setStatus(status)).catch(() => {});
  }
}
