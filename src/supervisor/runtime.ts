/**
 * The real actors behind the names the lifecycle machine invokes (`pool`,
 * `healthChecker`, `listeners`), each a bridge from an XState callback actor
 * to worker threads, plus the wiring between them: health flips go to the
 * pool, the pool's snapshots go to every listener, the lifecycle state goes
 * to every listener. Only control crosses threads; requests never do.
 */
import * as Comlink from 'comlink';
import { fromCallback } from 'xstate';
import type { Config } from '../config/schema.ts';
import { newCounterBuffer, readCounters } from '../listener/connections.ts';
import type { Logger, LogOptions } from '../log.ts';
import type { LifecycleEvent, LifecycleState, ListenerCommand } from '../machines/lifecycle.ts';
import { MAX_BACKEND_SLOTS, selectableCount } from '../pool/backend-pool.ts';
import { InFlight } from '../pool/balancers/in-flight.ts';
import type {
  ActorInit,
  BackendId,
  BackendSpec,
  BindResult,
  HealthCheckerApi,
  HealthEvent,
  ListenerApi,
  ListenerEvent,
  ListenerStatus,
  PoolApi,
  PoolEvent,
  PoolSnapshot,
} from '../protocol.ts';
import { assertNever } from '../protocol.ts';
import { ActorThread } from './actor-thread.ts';
import { listenerThreadCount } from './workers.ts';

type SendBack = (event: LifecycleEvent) => void;

/** How often the supervisor pings the pool actor, and how late an answer may be. */
export const POOL_HEARTBEAT_INTERVAL_MS = 1_000;
export const POOL_HEARTBEAT_DEADLINE_MS = 2_000;

export class ActorRuntime {
  readonly #config: Config;
  readonly #init: ActorInit;
  readonly #log: Logger;
  readonly #counter = newCounterBuffer();
  readonly #inFlight = InFlight.buffer(MAX_BACKEND_SLOTS);
  /** The snapshot version each listener last confirmed it applied. */
  readonly #applied = new Map<number, number>();
  #heartbeatOk = false;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #pool: ActorThread<PoolApi> | undefined;
  #healthChecker: ActorThread<HealthCheckerApi> | undefined;
  readonly #listeners: ActorThread<ListenerApi>[] = [];
  readonly #undrained = new Set<number>();
  #snapshot: PoolSnapshot | undefined;
  #status: ListenerStatus = { state: 'starting', poolHealthy: false };
  #port: number | undefined;
  /** Set once teardown begins: no new thread may start after it. */
  #closing = false;
  #listenersStarting: Promise<void> = Promise.resolve();
  /** Settles true once the pool actor has started (and published its set), false if it failed. */
  readonly #poolStarted: Promise<boolean>;
  #settlePoolStarted: (started: boolean) => void = () => {};

  readonly #onStoppedAccepting: () => void;
  readonly #onHealthChanged: (event: HealthEvent) => void;

  constructor(
    config: Config,
    log: LogOptions,
    logger: Logger,
    notify: { stoppedAccepting?: () => void; healthChanged?: (event: HealthEvent) => void } = {},
  ) {
    this.#config = config;
    this.#init = { config, log };
    this.#log = logger;
    this.#onStoppedAccepting = notify.stoppedAccepting ?? (() => {});
    this.#onHealthChanged = notify.healthChanged ?? (() => {});
    this.#poolStarted = new Promise((resolve) => (this.#settlePoolStarted = resolve));
  }

  /** Every actor thread: kind, id, whether it runs, and how often it was restarted (no restarts yet). */
  workers(): { id: number; kind: string; alive: boolean; restarts: number }[] {
    const threads = [this.#pool, this.#healthChecker, ...this.#listeners].filter((t) => t !== undefined);
    return threads.map((t) => ({ id: t.id, kind: t.kind, alive: t.alive, restarts: 0 }));
  }

  /** The backends of the latest snapshot, with their in-flight requests over all listener threads. */
  backends(): { address: string; port: number; weight: number; healthy: boolean; enabled: boolean; ejected: boolean; in_flight: number }[] {
    const inFlight = new InFlight(this.#inFlight);
    return (this.#snapshot?.backends ?? []).map((b) => ({
      address: b.address,
      port: b.port,
      weight: b.weight,
      healthy: b.healthy,
      enabled: b.enabled,
      ejected: b.ejected,
      in_flight: inFlight.get(b.slot),
    }));
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
    if (added) await this.#healthChecker?.call((api) => api.addBackend(spec));
    return added;
  }

  /** Removes a backend; requests already on it finish. False when the pool did not have it. */
  async removeBackend(id: BackendId): Promise<boolean> {
    const pool = this.#pool;
    if (!pool) throw new Error('the pool actor is not running');
    const removed = await pool.call((api) => api.removeBackend(id));
    if (removed) await this.#healthChecker?.call((api) => api.removeBackend(id));
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
        this.#startPool(sendBack);
        return () => {};
      }),
      healthChecker: fromCallback(({ sendBack }) => {
        this.#startHealthChecker(sendBack);
        return () => {};
      }),
      listeners: fromCallback<ListenerCommand>(({ sendBack, receive }) => {
        receive((command) => this.#commandListeners(command, sendBack));
        this.#listenersStarting = this.#startListeners(sendBack).catch((error: Error) => {
          if (!this.#closing) sendBack({ type: 'WORKER_FAILED', actor: 'listener', id: -1, message: error.message });
        });
        return () => {};
      }),
    };
  }

  /** Destroy the client connections still open; returns how many. */
  async forceCloseConnections(): Promise<number> {
    const counts = await Promise.all(this.#listeners.map((l) => l.call((api) => api.forceClose()).catch(() => 0)));
    return counts.reduce((sum, n) => sum + n, 0);
  }

  /** Let every thread flush, then end it: listeners first, the pool last. */
  async stopAll(): Promise<void> {
    this.#closing = true;
    // A pool that never finished starting must not hold the listeners' start-up loop.
    this.#settlePoolStarted(false);
    clearTimeout(this.#heartbeatTimer);
    // A listener still binding finishes first, so that it is stopped too.
    await this.#listenersStarting;
    await Promise.all(this.#listeners.map((l) => l.stop((api) => api.stop())));
    await this.#healthChecker?.stop((api) => api.stop());
    await this.#pool?.stop((api) => api.stop());
  }

  #failureReporter(sendBack: SendBack, actor: 'listener' | 'pool' | 'health-checker', id: number) {
    return (message: string) => {
      this.#log.error({ actor, id, reason: message }, `${actor} actor failed`);
      if (actor === 'pool') this.#updatePoolHealth();
      if (actor === 'listener') this.#markDrained(id, sendBack);
      sendBack({ type: 'WORKER_FAILED', actor, id, message });
    };
  }

  #startPool(sendBack: SendBack): void {
    const pool = new ActorThread<PoolApi>('pool', 0, this.#failureReporter(sendBack, 'pool', 0));
    this.#pool = pool;
    const published = (snapshot: PoolSnapshot) => {
      // Events travel on their own channel: never let an older snapshot replace a newer one.
      if (this.#snapshot && this.#snapshot.version >= snapshot.version) return;
      this.#snapshot = snapshot;
      for (const listener of this.#listeners) this.#sendSnapshot(listener);
      this.#updatePoolHealth();
      sendBack({ type: 'BACKENDS_CHANGED', healthy: selectableCount(snapshot), total: snapshot.backends.length });
    };
    const onEvent = (event: PoolEvent) => {
      switch (event.type) {
        case 'pool.published':
          return published(event.snapshot);
        case 'pool.ejected':
          void this.#healthChecker?.call((api) => api.markUnhealthy(event.backend)).catch(() => {});
          return;
        default:
          assertNever(event);
      }
    };
    pool.call((api) => api.start(this.#init, Comlink.proxy(onEvent))).then(
      (first) => {
        published(first);
        // Answering its start counts as the first heartbeat.
        this.#heartbeatOk = true;
        this.#updatePoolHealth();
        this.#settlePoolStarted(true);
        this.#heartbeatTimer = setTimeout(() => this.#heartbeat(pool), POOL_HEARTBEAT_INTERVAL_MS).unref();
      },
      () => this.#settlePoolStarted(false),
    );
  }

  /**
   * `pool_healthy` needs a pool that answers: a ping every second, which must
   * come back within two. A hung pool thread turns /ready 503.
   */
  #heartbeat(pool: ActorThread<PoolApi>): void {
    if (this.#closing || !pool.alive) return;
    const deadline = new Promise<false>((resolve) => setTimeout(() => resolve(false), POOL_HEARTBEAT_DEADLINE_MS).unref());
    void Promise.race([pool.call((api) => api.heartbeat()).then(() => true, () => false), deadline]).then((answered) => {
      this.#heartbeatOk = answered;
      this.#updatePoolHealth();
      if (!answered) this.#log.error({ actor: 'pool', deadline_ms: POOL_HEARTBEAT_DEADLINE_MS }, 'pool actor missed its heartbeat');
      this.#heartbeatTimer = setTimeout(() => this.#heartbeat(pool), POOL_HEARTBEAT_INTERVAL_MS);
      this.#heartbeatTimer.unref();
    });
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

  #startHealthChecker(sendBack: SendBack): void {
    const checker = new ActorThread<HealthCheckerApi>('health-checker', 0, this.#failureReporter(sendBack, 'health-checker', 0));
    this.#healthChecker = checker;
    const onEvent = (event: HealthEvent) => {
      void this.#pool?.call((api) => api.applyHealth(event.observation)).catch(() => {});
      this.#onHealthChanged(event);
    };
    checker.call((api) => api.start(this.#init, Comlink.proxy(onEvent))).catch(() => {});
  }

  /**
   * Listener threads start one after another: the first binds the configured
   * port, the others bind the port it got (so port 0 means one port for all).
   * Each is started only once the pool has published its set, which it gets
   * with its start: no listener ever serves without a snapshot.
   */
  async #startListeners(sendBack: SendBack): Promise<void> {
    let port = this.#config.proxy.listen_port;
    const count = listenerThreadCount(this.#config.proxy.workers);
    for (let id = 0; id < count && !this.#closing; id++) {
      const listener = new ActorThread<ListenerApi>('listener', id, this.#failureReporter(sendBack, 'listener', id));
      this.#listeners.push(listener);
      // The thread boots meanwhile; a failed pool has already been reported.
      if (!(await this.#poolStarted) || this.#closing) return;
      const onEvent = (event: ListenerEvent) => {
        switch (event.type) {
          case 'listener.drained':
            return this.#markDrained(event.id, sendBack);
          case 'listener.passive':
            return void this.#pool?.call((api) => api.reportPassive(event.report)).catch(() => {});
          default:
            assertNever(event);
        }
      };
      const snapshot = this.#snapshot;
      const init = { ...this.#init, id, port, connectionCounter: this.#counter, inFlight: this.#inFlight, snapshot, status: this.#status };
      const result: BindResult = await listener.call((api) => api.start(init, Comlink.proxy(onEvent)) as Promise<BindResult>);
      if (!result.ok) {
        sendBack({ type: 'LISTEN_FAILED', code: result.failure.code, message: result.failure.message });
        return;
      }
      port = result.port;
      this.#applied.set(id, snapshot!.version);
      // Whatever changed while it was starting.
      if (this.#snapshot !== snapshot) this.#sendSnapshot(listener);
      void listener.call((api) => api.setStatus(this.#status)).catch(() => {});
      this.#updatePoolHealth();
    }
    if (this.#closing) return;
    this.#port = port;
    this.#log.info({ host: this.#config.proxy.listen_host, port, listeners: count }, `Listening on ${this.#config.proxy.listen_host}:${port}`);
    sendBack({ type: 'LISTENERS_BOUND' });
  }

  #commandListeners(command: ListenerCommand, sendBack: SendBack): void {
    switch (command.type) {
      case 'BEGIN_DRAIN':
        for (const l of this.#listeners) void l.call((api) => api.beginDrain()).catch(() => {});
        return;
      case 'CLOSE_LISTENING':
        const live = this.#listeners.filter((l) => l.alive);
        for (const l of live) this.#undrained.add(l.id);
        if (live.length === 0) return sendBack({ type: 'CONNECTIONS_DRAINED' });
        void Promise.all(live.map((l) => l.call((api) => api.closeListening()).catch(() => {}))).then(() => {
          this.#log.info({ listeners: live.length, active: this.activeConnections() }, 'Stopped accepting new connections');
          this.#onStoppedAccepting();
        });
        return;
    }
  }

  #markDrained(id: number, sendBack: SendBack): void {
    if (!this.#undrained.delete(id)) return;
    if (this.#undrained.size === 0) sendBack({ type: 'CONNECTIONS_DRAINED' });
  }

  #broadcastStatus(status: ListenerStatus): void {
    this.#status = status;
    for (const l of this.#listeners) void l.call((api) => api.setStatus(status)).catch(() => {});
  }
}
