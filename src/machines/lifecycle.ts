/**
 * The sluice lifecycle: starting → healthy → draining → stopped.
 *
 * Pure on purpose (no `node:` imports): the machine names its actors and
 * delays, the supervisor supplies real worker-thread actors with `.provide()`,
 * and tests supply fakes and drive every delay with a `SimulatedClock`.
 *
 * `healthy` needs bound listeners and, unless `requireHealthyBackends` is
 * false, a healthy backend (the `readyToServe` guard).
 *
 * The three delays are explicit transitions:
 *   startupTimeout  starting          → stopped  (exit 1)
 *   gracePeriod     draining.grace    → draining.closing
 *   drainTimeout    draining.closing  → stopped  (remaining connections force-closed)
 */
import { assign, fromCallback, sendTo, setup } from 'xstate';
import type { ActorKind, Failure as ReportedFailure } from '../protocol.ts';

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
  /** A listener thread could not bind (port in use, permission…). */
  | { type: 'LISTEN_FAILED'; code: string; message: string }
  /** The pool actor published a new selectable set. */
  | { type: 'BACKENDS_CHANGED'; healthy: number; total: number }
  /** A stop was asked for: SIGTERM, SIGINT or the embedding API. */
  | { type: 'STOP'; signal: string }
  /** After the listening sockets closed, the last client connection ended. */
  | { type: 'CONNECTIONS_DRAINED' }
  /** An actor thread failed while starting or draining, or failed too often to be restarted. */
  | { type: 'WORKER_FAILED'; actor: ActorKind; id: number; message: string }
  /** A new configuration was applied (SIGHUP): the delays it sets apply from now on. */
  | { type: 'RELOAD'; timeouts: LifecycleTimeouts };

/** Commands the machine sends to the listeners actor. */
export type ListenerCommand = { type: 'BEGIN_DRAIN' } | { type: 'CLOSE_LISTENING' };

export type LifecycleState = 'starting' | 'healthy' | 'draining' | 'stopped';

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
const inert = fromCallback(() => () => {});
const inertListeners = fromCallback<ListenerCommand>(() => () => {});

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
    stopBecause: assign((_, params: { reason: StopReason }) => ({ stopReason: params.reason })),
    recordStartupTimeout: assign({
      failure: ({ context }) => ({
        code: 'SLUICE_STARTUP_TIMEOUT',
        message: context.requireHealthyBackends
          ? `no healthy backend within ${context.startupTimeoutMs} ms`
          : `listeners not bound within ${context.startupTimeoutMs} ms`,
      }),
    }),
    applyTimeouts: assign(({ event }) => (event.type === 'RELOAD' ? { ...event.timeouts } : {})),
    recordBackends: assign({
      healthyBackends: ({ event }) => (event.type === 'BACKENDS_CHANGED' ? event.healthy : 0),
    }),
    recordWorkerFailure: assign({
      failure: ({ event }) =>
        event.type === 'WORKER_FAILED'
          ? { code: 'SLUICE_WORKER_FAILED', message: event.message, actor: event.actor }
          : null,
    }),
    recordListenFailure: assign({
      failure: ({ event }) =>
        event.type === 'LISTEN_FAILED' ? { code: event.code, message: event.message } : null,
    }),
    beginDrain: sendTo('listeners', { type: 'BEGIN_DRAIN' } satisfies ListenerCommand),
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
        LISTENERS_BOUND: { actions: assign({ listenersBound: true }) },
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
      on: {
        BACKENDS_CHANGED: { actions: 'recordBackends' },
        STOP: { target: 'draining' },
        // A reload is a transition of its own (healthy → healthy), recorded and logged as such.
        RELOAD: { target: 'healthy', reenter: true, actions: 'applyTimeouts' },
        // The supervisor restarts crashed or hung actors itself; this event means
        // it gave up (too many restarts): drain what the other threads hold, exit 1.
        WORKER_FAILED: { target: 'draining', actions: 'recordWorkerFailure' },
      },
    },
    draining: {
      entry: 'beginDrain',
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
            CONNECTIONS_DRAINED: { target: '#lifecycle.stopped', actions: stopBecause('drained') },
          },
        },
      },
    },
    stopped: { type: 'final' },
  },
});

/** The top-level state of a snapshot value, e.g. `{ draining: 'grace' }` → `draining`. */
export function topLevelState(value: unknown): LifecycleState {
  const name = typeof value === 'string' ? value : Object.keys(value as object)[0];
  return name as LifecycleState;
}
