/**
 * The sluice lifecycle: starting → healthy → draining → stopped.
 *
 * Pure on purpose (no `node:` imports): the machine names its actors,
 * delays and effects, the supervisor supplies the real ones with
 * `.provide({ actors, actions })`, and tests supply fakes and drive every
 * delay with a `SimulatedClock`. Read top to bottom, the states below list
 * everything the lifecycle does, in order:
 *
 *   healthy   handOverPidFile → writeProxyInfo → announceHealthy → reportReady
 *   draining  announceDraining; after gracePeriod closeListening (sent to the
 *             listeners), then runOnStop once they stopped accepting
 *   stopped   announceStopped; the supervisor's teardown follows
 *
 * `healthy` needs bound listeners and, unless `requireHealthyBackends` is
 * false, a healthy backend (the `readyToServe` guard).
 *
 * The three delays are explicit transitions:
 *   startupTimeout  starting          → stopped  (exit 1)
 *   gracePeriod     draining.grace    → draining.closing
 *   drainTimeout    draining.closing  → stopped  (remaining connections force-closed)
 */
import { assertEvent, assign, fromCallback, sendTo, setup } from 'xstate';
import { lifecycleStates, type ActorKind, type Failure as ReportedFailure, type LifecycleState } from '../protocol.ts';

export { lifecycleStates, type LifecycleState };

/** The delays, in milliseconds; a reload may change them. */
export interface LifecycleTimeouts {
  startupTimeoutMs: number;
  gracePeriodMs: number;
  drainTimeoutMs: number;
}

export interface LifecycleInput extends LifecycleTimeouts {
  /**
   * `proxy.require_healthy_backends`: `false` makes the proxy healthy once its
   * listeners are bound, backends or not (as nginx starts). Default true.
   */
  requireHealthyBackends?: boolean;
}

/** Why the lifecycle reached `stopped`; the exit code is derived from it. */
export type StopReason =
  | 'drained'
  | 'drain_timeout'
  | 'second_signal'
  | 'signal_during_startup'
  | 'startup_timeout'
  | 'listen_failed'
  | 'worker_failed';

/** A failure that stopped the lifecycle, as reported, with the actor when one failed. */
export interface Failure extends ReportedFailure {
  actor?: ActorKind;
}

export interface LifecycleContext extends LifecycleTimeouts {
  requireHealthyBackends: boolean;
  listenersBound: boolean;
  healthyBackends: number;
  stopReason: StopReason | null;
  /** Set by a runtime failure; a failure always makes the exit code 1. */
  failure: Failure | null;
}

export type LifecycleEvent =
  /** Every listener thread has bound its socket. */
  | { type: 'LISTENERS_BOUND' }
  /** A listener thread could not bind (port in use, permission…); `cause` is the system's code. */
  | { type: 'LISTEN_FAILED'; cause: string; message: string }
  /** The pool actor published a new selectable set. */
  | { type: 'BACKENDS_CHANGED'; healthy: number; total: number }
  /** A stop was asked for: SIGTERM, SIGINT or the embedding API. */
  | { type: 'STOP'; signal: string }
  /** Every listening socket is closed: nothing new is accepted. */
  | { type: 'LISTENERS_CLOSED' }
  /** After the listening sockets closed, the last client connection ended. */
  | { type: 'CONNECTIONS_DRAINED' }
  /** An actor thread failed while starting or draining, or failed too often to be restarted. */
  | { type: 'WORKER_FAILED'; actor: ActorKind; id: number; message: string }
  /** A new configuration was applied (SIGHUP): the delays it sets apply from now on. */
  | { type: 'RELOAD'; timeouts: LifecycleTimeouts };

/** The command the machine sends to the listeners actor; it answers LISTENERS_CLOSED, then CONNECTIONS_DRAINED. */
export interface ListenerCommand {
  type: 'CLOSE_LISTENING';
}

/** Runtime failures end in exit 1; stops that were asked for end in exit 0. */
export function exitCodeOf(context: Pick<LifecycleContext, 'stopReason' | 'failure'>): 0 | 1 {
  if (context.failure) return 1;
  switch (context.stopReason) {
    case 'startup_timeout':
    case 'listen_failed':
    case 'worker_failed':
      return 1;
    default:
      return 0;
  }
}

/** Placeholder actors: they do nothing. The supervisor and tests provide real ones. */
const inert = fromCallback(() => holdsNothing);
const inertListeners = fromCallback<ListenerCommand>(() => holdsNothing);

function holdsNothing(): void {
  // An inert actor started nothing, so stopping it has nothing to release.
}

function providedBySupervisor(): void {
  // The effect's placeholder: the supervisor binds the real one with .provide({ actions }), tests a fake.
}

const stopBecause = (reason: StopReason) => ({ type: 'stopBecause', params: { reason } }) as const;

export const lifecycleMachine = setup({
  types: {
    context: {} as LifecycleContext,
    events: {} as LifecycleEvent,
    input: {} as LifecycleInput,
  },
  actors: {
    pool: inert,
    healthChecker: inert,
    listeners: inertListeners,
  },
  delays: {
    startupTimeout: ({ context }) => context.startupTimeoutMs,
    gracePeriod: ({ context }) => context.gracePeriodMs,
    drainTimeout: ({ context }) => context.drainTimeoutMs,
  },
  guards: {
    // With require_healthy_backends false, bound listeners suffice: requests get 502 until a backend passes.
    readyToServe: ({ context }) =>
      context.listenersBound && (context.healthyBackends > 0 || !context.requireHealthyBackends),
  },
  actions: {
    // The effects: no-ops here, the supervisor provides the real ones, tests fakes that record them.
    /** A hot restart's successor: the PID file names this process from now on. */
    handOverPidFile: providedBySupervisor,
    /** The file beside the PID file that says where this proxy answers (`sluice status` reads it). */
    writeProxyInfo: providedBySupervisor,
    /** The phase message to every listener: /health turns 200, a successor accepts on its inherited sockets. */
    announceHealthy: providedBySupervisor,
    /** The phase message: /health and /ready turn 503, every response says `Connection: close`. */
    announceDraining: providedBySupervisor,
    announceStopped: providedBySupervisor,
    /** A parent waiting for this process (`-d`, a hot restart's predecessor) learns it is healthy. */
    reportReady: providedBySupervisor,
    /** The `onStop` hook: the listeners stopped accepting. */
    runOnStop: providedBySupervisor,
    recordListenersBound: assign({ listenersBound: true }),
    stopBecause: assign((_, params: { reason: StopReason }) => ({ stopReason: params.reason })),
    recordStartupTimeout: assign({
      failure: ({ context }) => ({
        code: 'SLUICE_STARTUP_TIMEOUT',
        message: context.requireHealthyBackends
          ? `no healthy backend within ${context.startupTimeoutMs} ms`
          : `listeners not bound within ${context.startupTimeoutMs} ms`,
      }),
    }),
    applyTimeouts: assign(({ event }) => {
      assertEvent(event, 'RELOAD');
      return { ...event.timeouts };
    }),
    recordBackends: assign({
      healthyBackends: ({ event }) => {
        assertEvent(event, 'BACKENDS_CHANGED');
        return event.healthy;
      },
    }),
    recordWorkerFailure: assign({
      failure: ({ event }) => {
        assertEvent(event, 'WORKER_FAILED');
        return { code: 'SLUICE_WORKER_FAILED', message: event.message, actor: event.actor };
      },
    }),
    recordListenFailure: assign({
      failure: ({ event }) => {
        assertEvent(event, 'LISTEN_FAILED');
        return { code: 'SLUICE_LISTEN_FAILED', cause: event.cause, message: event.message };
      },
    }),
    closeListening: sendTo('listeners', { type: 'CLOSE_LISTENING' } satisfies ListenerCommand),
  },
}).createMachine({
  id: 'lifecycle',
  context: ({ input }) => ({
    startupTimeoutMs: input.startupTimeoutMs,
    gracePeriodMs: input.gracePeriodMs,
    drainTimeoutMs: input.drainTimeoutMs,
    requireHealthyBackends: input.requireHealthyBackends ?? true,
    listenersBound: false,
    healthyBackends: 0,
    stopReason: null,
    failure: null,
  }),
  invoke: [
    { id: 'pool', src: 'pool' },
    { id: 'healthChecker', src: 'healthChecker' },
    { id: 'listeners', src: 'listeners' },
  ],
  initial: 'starting',
  states: {
    starting: {
      after: {
        startupTimeout: {
          target: 'stopped',
          actions: [stopBecause('startup_timeout'), 'recordStartupTimeout'],
        },
      },
      always: { guard: 'readyToServe', target: 'healthy' },
      on: {
        LISTENERS_BOUND: { actions: 'recordListenersBound' },
        BACKENDS_CHANGED: { actions: 'recordBackends' },
        LISTEN_FAILED: {
          target: 'stopped',
          actions: [stopBecause('listen_failed'), 'recordListenFailure'],
        },
        WORKER_FAILED: {
          target: 'stopped',
          actions: [stopBecause('worker_failed'), 'recordWorkerFailure'],
        },
        STOP: { target: 'stopped', actions: stopBecause('signal_during_startup') },
      },
    },
    healthy: {
      entry: ['handOverPidFile', 'writeProxyInfo', 'announceHealthy', 'reportReady'],
      on: {
        BACKENDS_CHANGED: { actions: 'recordBackends' },
        STOP: { target: 'draining' },
        // A reload is a transition of its own (healthy → healthy), recorded and logged as such;
        // it does not enter `healthy` again (the parent was told, the PID file is ours).
        RELOAD: { target: 'healthy', actions: ['applyTimeouts', 'writeProxyInfo'] },
        // The supervisor restarts crashed or hung actors itself; this event means
        // it gave up (too many restarts): drain what the other threads hold, exit 1.
        WORKER_FAILED: { target: 'draining', actions: 'recordWorkerFailure' },
      },
    },
    draining: {
      entry: 'announceDraining',
      initial: 'grace',
      on: {
        STOP: { target: 'stopped', actions: stopBecause('second_signal') },
        WORKER_FAILED: { actions: 'recordWorkerFailure' },
      },
      states: {
        grace: {
          after: { gracePeriod: { target: 'closing' } },
        },
        closing: {
          entry: 'closeListening',
          after: {
            drainTimeout: { target: '#lifecycle.stopped', actions: stopBecause('drain_timeout') },
          },
          on: {
            LISTENERS_CLOSED: { actions: 'runOnStop' },
            CONNECTIONS_DRAINED: { target: '#lifecycle.stopped', actions: stopBecause('drained') },
          },
        },
      },
    },
    // What follows `stopped` (force-closing, ending the threads, onStop when no drain ran it,
    // removing the PID file) is the supervisor's teardown: nothing is left to decide.
    stopped: { type: 'final', entry: 'announceStopped' },
  },
});

/** The top-level state of a snapshot value, e.g. `{ draining: 'grace' }` → `draining`. */
export function topLevelState(value: unknown): LifecycleState {
  const name = typeof value === 'string' ? value : Object.keys(value as object)[0];
  return name as LifecycleState;
}
