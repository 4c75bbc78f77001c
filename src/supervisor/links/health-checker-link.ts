/**
 * The link between the lifecycle machine's `healthChecker` actor and the
 * health-checker thread: it starts (and restarts) the thread from the
 * health known now, and passes its flips on. Its channel back to the
 * machine carries only a failure supervision gave up on.
 */
import * as Comlink from 'comlink';
import { fromCallback } from 'xstate';
import type { Logger } from '../../log.ts';
import type { LifecycleEvent } from '../../machines/lifecycle.ts';
import type { ActorInit, BackendId, BackendSpec, HealthCheckerApi, HealthEvent, ProbeReport } from '../../protocol.ts';
import { errorMessage, type ActorThread } from '../actor-thread.ts';
import { beforeInvoke, stoppedBySupervisor } from './no-ops.ts';
import type { ThreadSupervisor } from '../thread-supervisor.ts';

export interface HealthCheckerWiring {
  supervision: ThreadSupervisor;
  log: Logger;
  /** What the checker starts with: the config with the backend set known now. */
  init: () => ActorInit;
  /** Backends known healthy, and those DNS gave: where a restarted checker starts from. */
  knownHealthy: () => BackendId[];
  discovered: () => BackendSpec[];
  /** A backend's health flipped: the pool applies it, the admin's /events shows it. */
  changed: (event: HealthEvent) => void;
}

export class HealthCheckerLink {
  readonly #wiring: HealthCheckerWiring;
  #thread: ActorThread<HealthCheckerApi> | undefined;
  #sendBack: (event: LifecycleEvent) => void = beforeInvoke;

  constructor(wiring: HealthCheckerWiring) {
    this.#wiring = wiring;
  }

  /** The implementation of the machine's `healthChecker` actor. */
  machineActor() {
    return fromCallback(({ sendBack }) => {
      this.#sendBack = sendBack;
      this.start();
      return stoppedBySupervisor;
    });
  }

  get thread(): ActorThread<HealthCheckerApi> | undefined {
    return this.#thread;
  }

  /** Supervision gave up on the checker: the machine decides what follows. */
  gaveUp(failure: { id: number; message: string }): void {
    this.#sendBack({ type: 'WORKER_FAILED', actor: 'health-checker', ...failure });
  }

  /** Tells the running checker; nothing to do when there is none (it starts from what is known then). */
  tell(call: string, invoke: (api: Comlink.Remote<HealthCheckerApi>) => Promise<unknown>): void {
    this.#thread?.tell(this.#wiring.log, call, invoke);
  }

  /**
   * Every backend's latest probe result; undefined when the checker is not
   * running or does not answer within `deadlineMs`.
   */
  async lastProbes(deadlineMs = 1_000): Promise<ProbeReport[] | undefined> {
    const checker = this.#thread;
    if (!checker?.alive) return undefined;
    const deadline = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), deadlineMs).unref());
    const logFailure = checker.logFailure(this.#wiring.log, 'lastProbes');
    const probes = checker
      .call((api) => api.lastProbes())
      .catch((error: unknown) => {
        logFailure(error);
        return undefined;
      });
    return Promise.race([probes, deadline]);
  }

  /** Starts the checker thread; again after a failure, from the health known now. */
  start(): void {
    const { supervision, log } = this.#wiring;
    const checker = supervision.spawn<HealthCheckerApi>('health-checker', 0);
    const restarted = this.#thread !== undefined;
    this.#thread = checker;
    if (restarted) supervision.restarting(checker);
    const onEvent = (event: HealthEvent) => this.#wiring.changed(event);
    const init = this.#wiring.init();
    const healthy = this.#wiring.knownHealthy();
    checker
      .call((api) => api.start(init, Comlink.proxy(onEvent), healthy, this.#wiring.discovered()))
      .then(
        () => {
          supervision.running(checker);
          if (restarted)
            log.info({ event: 'actor.restarted', actor: 'health-checker' }, 'health-checker actor restarted');
        },
        (error: unknown) => checker.kill(`start failed: ${errorMessage(error)}`),
      );
  }
}
