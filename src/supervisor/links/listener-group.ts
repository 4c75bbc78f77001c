/**
 * The link between the lifecycle machine's `listeners` actor and the
 * listener threads: it starts them one after another (on the configured
 * listeners' ports, or on the sockets a predecessor handed over), sends each the phase
 * message and the pool's snapshots, and tells the machine on its own
 * channel: LISTENERS_BOUND or LISTEN_FAILED, then, after CLOSE_LISTENING,
 * LISTENERS_CLOSED and CONNECTIONS_DRAINED, in that order.
 */
import * as Comlink from 'comlink';
import { fromCallback } from 'xstate';
import type { Config } from '../../config/schema.ts';
import type { Logger } from '../../log.ts';
import type { LifecycleEvent, LifecycleState, ListenerCommand } from '../../machines/lifecycle.ts';
import {
  assertNever,
  type ActorInit,
  type ListenerApi,
  type ListenerEvent,
  type ListenerStartResult,
  type ListenerStatus,
  type PassiveReport,
  type PoolSnapshot,
} from '../../protocol.ts';
import { errorMessage, type ActorThread } from '../actor-thread.ts';
import { beforeInvoke, stoppedBySupervisor } from './no-ops.ts';
import { assignInherited, type Assignment, type InheritedSockets } from '../inherited-sockets.ts';
import { describeListener, listenSpecs } from '../../config/listeners.ts';
import type { ListenerTls, TicketKeys } from '../../protocol.ts';
import type { ThreadSupervisor } from '../thread-supervisor.ts';
import { listenerThreadCount } from '../workers.ts';

export interface ListenerGroupWiring {
  supervision: ThreadSupervisor;
  log: Logger;
  config: () => Config;
  init: () => ActorInit;
  /** Shared with every listener thread: live connections, in-flight requests per backend. */
  connectionCounter: SharedArrayBuffer;
  inFlight: SharedArrayBuffer;
  /** The pool's latest snapshot, and whether the pool started: no listener serves without one. */
  snapshot: () => PoolSnapshot | undefined;
  poolStarted: Promise<boolean>;
  /** A listener saw a backend fail or recover on live traffic. */
  passive: (report: PassiveReport) => void;
  /** Which snapshot the listeners hold changed (`pool_healthy` depends on it). */
  appliedChanged: () => void;
  /** Every listener thread is bound: the ports are known (port 0, a handed-over socket). */
  listening: (ports: number[]) => void;
  /** Each listener's certificates, as the main thread last read them (null: plain). */
  tls: () => (ListenerTls | null)[];
  /** The session-ticket keys every thread uses now. */
  ticketKeys: () => TicketKeys;
  /** Live client connections over every listener thread, for the log. */
  activeConnections: () => number;
}

export class ListenerGroup {
  readonly #wiring: ListenerGroupWiring;
  readonly #listeners: ActorThread<ListenerApi>[] = [];
  /**
   * Threads whose start answered: only they take snapshots, status and
   * reloads (one still starting gets what changed meanwhile once it answers).
   */
  readonly #started = new WeakSet<ActorThread<ListenerApi>>();
  /** The snapshot version each listener last confirmed it applied. */
  readonly #applied = new Map<number, number>();
  readonly #undrained = new Set<number>();
  /** Settles once every listener answered CLOSE_LISTENING: CONNECTIONS_DRAINED waits for it. */
  #closed: Promise<void> = Promise.resolve();
  #status: ListenerStatus = { state: 'starting', poolHealthy: false };
  /** Each listener's bound port (listenSpecs order), once the first thread bound them. */
  #ports: number[] | undefined;
  #starting: Promise<void> = Promise.resolve();
  #sendBack: (event: LifecycleEvent) => void = beforeInvoke;
  /** Sockets handed over by the process this one replaces; used by the first start only. */
  #inherited: InheritedSockets | undefined;

  constructor(wiring: ListenerGroupWiring, inherited?: InheritedSockets) {
    this.#wiring = wiring;
    this.#inherited = inherited;
  }

  /** The implementation of the machine's `listeners` actor. */
  machineActor() {
    return fromCallback<ListenerCommand>(({ sendBack, receive }) => {
      this.#sendBack = sendBack;
      receive(() => this.#closeListening());
      this.#starting = this.#startAll().catch((error: unknown) => {
        if (this.#wiring.supervision.closing) return;
        sendBack({ type: 'WORKER_FAILED', actor: 'listener', id: -1, message: errorMessage(error) });
      });
      return stoppedBySupervisor;
    });
  }

  get threads(): readonly ActorThread<ListenerApi>[] {
    return this.#listeners;
  }

  /** The threads that finished starting. */
  get started(): ActorThread<ListenerApi>[] {
    return this.#listeners.filter((l) => this.#started.has(l));
  }

  /** Every listener's port, in listenSpecs order (known once the first thread bound them: port 0). */
  get ports(): number[] | undefined {
    return this.#ports;
  }

  get status(): ListenerStatus {
    return this.#status;
  }

  /** Every live listener holds a snapshot (not necessarily the newest). */
  get allHoldSnapshot(): boolean {
    return this.#listeners.every((l) => !l.alive || this.#applied.has(l.id));
  }

  /** The phase message, from the machine's announce actions: once per phase, to every listener. */
  announce(state: LifecycleState): void {
    if (state === 'draining') this.#wiring.supervision.draining = true;
    this.#broadcast({ ...this.#status, state });
  }

  setPoolHealthy(poolHealthy: boolean): void {
    if (poolHealthy !== this.#status.poolHealthy) this.#broadcast({ ...this.#status, poolHealthy });
  }

  /** Supervision gave up on a listener: the machine decides what follows. */
  gaveUp(failure: { id: number; message: string }): void {
    this.#sendBack({ type: 'WORKER_FAILED', actor: 'listener', ...failure });
  }

  /** Tells every listener that finished starting. */
  tellStarted(call: string, invoke: (api: Comlink.Remote<ListenerApi>) => Promise<unknown>): void {
    for (const l of this.started) l.tell(this.#wiring.log, call, invoke);
  }

  sendSnapshot(listener: ActorThread<ListenerApi>): void {
    const snapshot = this.#wiring.snapshot();
    if (!snapshot) return;
    listener
      .call((api) => api.applySnapshot(snapshot))
      .then(
        (version) => {
          this.#applied.set(listener.id, version);
          this.#wiring.appliedChanged();
        },
        // It keeps routing with the snapshot it holds.
        listener.logFailure(this.#wiring.log, 'applySnapshot'),
      );
  }

  /** A listener failed, or drained: the drain ends when the last one did. */
  markDrained(id: number): void {
    if (!this.#undrained.delete(id)) return;
    if (this.#undrained.size === 0) void this.#closed.then(() => this.#sendBack({ type: 'CONNECTIONS_DRAINED' }));
  }

  /** A failed listener's backoff has passed: start it again on the ports all the others serve. */
  async restart(id: number): Promise<void> {
    const ports = this.#ports ?? listenSpecs(this.#wiring.config()).map((spec) => spec.port);
    const listener = await this.#start(id, ports, true);
    if (listener)
      this.#wiring.log.info({ event: 'actor.restarted', actor: 'listener', id }, 'listener actor restarted');
  }

  /** Teardown: a listener still binding finishes first, so that it is stopped too. */
  async stopAll(): Promise<void> {
    await this.#starting;
    await Promise.all(this.#listeners.map((l) => l.stop((api) => api.stop())));
  }

  /**
   * Every listener thread boots (loads its modules) at once; they then bind
   * one after another: the first binds the configured ports, the others bind
   * the ports it got (so port 0 means one port for all).
   * Each is started only once the pool has published its set, which it gets
   * with its start: no listener ever serves without a snapshot.
   */
  async #startAll(): Promise<void> {
    const { config: configOf, supervision, log } = this.#wiring;
    const specs = listenSpecs(configOf());
    let ports = specs.map((spec) => spec.port);
    const count = listenerThreadCount(configOf().proxy.workers);
    const handedOver = this.#takeInherited(count);
    if (handedOver) ports = handedOver.ports;
    const threads = Array.from({ length: count }, (_, id) => this.#spawn(id, false));
    for (let id = 0; id < count && !supervision.closing; id++) {
      const listener = await this.#start(id, ports, false, handedOver?.fdsOf(id), threads[id]);
      if (!listener) return;
      ports = this.#ports ?? ports;
    }
    if (supervision.closing) return;
    const addresses = specs.map((spec, index) => describeListener(spec, ports[index]!));
    const first = { host: specs[0]!.host, port: ports[0] };
    const bound = {
      event: 'listeners.listening',
      ...first,
      ports,
      addresses,
      listeners: count,
      handed_over: handedOver !== undefined,
    };
    log.info(bound, `Listening on ${addresses.join(', ')}`);
    this.#wiring.listening(ports);
    this.#sendBack({ type: 'LISTENERS_BOUND' });
  }

  /**
   * In a hot restart's successor: which inherited sockets each listener
   * thread serves (spread over them when the thread count changed). None when
   * the listen address changed: the old sockets are closed, the new address bound.
   */
  #takeInherited(count: number): Assignment | undefined {
    const inherited = this.#inherited;
    this.#inherited = undefined;
    if (!inherited) return undefined;
    const specs = listenSpecs(this.#wiring.config());
    const assigned = assignInherited(inherited, specs, count);
    const fresh = specs
      .filter((_, index) => assigned.fdsOf(0)[index] === null)
      .map((spec) => `${spec.host}:${spec.port}`);
    if (assigned.dropped.length > 0 || fresh.length > 0) {
      const from = assigned.dropped.map((l) => `${l.host}:${l.port}`);
      this.#wiring.log.warn({ from, to: fresh }, 'the listen addresses changed: binding the new ones');
    }
    return assigned;
  }

  /** A new thread for listener `id`, booting; started by #start. */
  #spawn(id: number, restart: boolean): ActorThread<ListenerApi> {
    const supervision = this.#wiring.supervision;
    const listener = supervision.spawn<ListenerApi>('listener', id);
    this.#listeners[id] = listener;
    this.#applied.delete(id);
    // A restarted thread that fails while starting counts against its restart budget.
    if (restart) supervision.restarting(listener);
    return listener;
  }

  /** Starts listener `id` on `ports`; undefined when it could not (reported already). */
  async #start(
    id: number,
    ports: number[],
    restart: boolean,
    inheritedFds?: (number[] | null)[],
    listener = this.#spawn(id, restart),
  ): Promise<ActorThread<ListenerApi> | undefined> {
    const { supervision, log } = this.#wiring;
    // The thread boots meanwhile; a failed pool has already been reported.
    if (!(await this.#wiring.poolStarted) || supervision.closing) return undefined;
    const onEvent = (event: ListenerEvent) => {
      switch (event.type) {
        case 'listener.drained': {
          this.markDrained(event.id);
          return;
        }
        case 'listener.passive': {
          this.#wiring.passive(event.report);
          return;
        }
        default:
          assertNever(event);
      }
    };
    const snapshot = this.#wiring.snapshot();
    const shared = { connectionCounter: this.#wiring.connectionCounter, inFlight: this.#wiring.inFlight };
    const tls = this.#wiring.tls();
    const ticketKeys = this.#wiring.ticketKeys();
    const status = this.#status;
    const init = { ...this.#wiring.init(), id, ports, tls, ticketKeys, ...shared, snapshot, status, inheritedFds };
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
      log.error(line, `listener actor ${id} failed while starting: ${message}`);
      // A thread that cannot set itself up cannot serve: ended, and (restarted) counted against its budget.
      if (restart) listener.kill(`${code}: ${message}`);
      else this.#sendBack({ type: 'WORKER_FAILED', actor: 'listener', id, message });
      return undefined;
    }
    if (!result.ok) {
      if (restart) {
        listener.kill(`${result.failure.code}: ${result.failure.message}`);
      } else {
        this.#sendBack({ type: 'LISTEN_FAILED', cause: result.failure.code, message: result.failure.message });
      }
      return undefined;
    }
    this.#ports = result.ports;
    this.#started.add(listener);
    if (snapshot) this.#applied.set(id, snapshot.version);
    // Whatever changed while it was starting.
    if (this.#wiring.snapshot() !== snapshot) this.sendSnapshot(listener);
    const config = this.#wiring.init().config;
    const latestTls = this.#wiring.tls();
    if (config !== init.config || latestTls !== tls) {
      listener.tell(log, 'reconfigure', (api) => Promise.resolve(api.reconfigure(config, latestTls)));
    }
    const latestKeys = this.#wiring.ticketKeys();
    if (latestKeys.current !== ticketKeys.current) {
      listener.tell(log, 'setTicketKeys', (api) => api.setTicketKeys(latestKeys));
    }
    const latestStatus = this.#status;
    listener.tell(log, 'setStatus', (api) => api.setStatus(latestStatus));
    supervision.running(listener);
    this.#wiring.appliedChanged();
    return listener;
  }

  /** The machine's CLOSE_LISTENING, its one command to the listeners (ListenerCommand has no other type). */
  #closeListening(): void {
    const { supervision, log } = this.#wiring;
    supervision.draining = true;
    const live = this.#listeners.filter((l) => l.alive);
    for (const l of live) this.#undrained.add(l.id);
    if (live.length === 0) return this.#sendBack({ type: 'CONNECTIONS_DRAINED' });
    log.info({ event: 'listeners.closing', listeners: live.length }, 'Closing the listening sockets');
    const close = (l: ActorThread<ListenerApi>) =>
      l.call((api) => api.closeListening()).catch(l.logFailure(log, 'closeListening'));
    const closing = live.map(close);
    this.#closed = Promise.all(closing).then(() => {
      const active = this.#wiring.activeConnections();
      log.info({ event: 'listeners.closed', listeners: live.length, active }, 'Stopped accepting new connections');
      this.#sendBack({ type: 'LISTENERS_CLOSED' });
    });
  }

  #broadcast(status: ListenerStatus): void {
    this.#status = status;
    this.tellStarted('setStatus', (api) => api.setStatus(status));
  }
}
