/**
 * Supervision of the actor threads, apart from what they do: every running
 * thread answers a heartbeat each second (within two); a thread that
 * crashes, exits or misses its heartbeat is restarted with backoff
 * (RestartPolicy). A thread that fails while starting, any failure while
 * draining, and a thread that fails too often are handed to the lifecycle
 * instead (`giveUp`), which stops the proxy.
 */
import type { Logger } from '../log.ts';
import type { ActorKind } from '../protocol.ts';
import { ActorThread } from './actor-thread.ts';
import { defaultRestartLimits, RestartPolicy } from './restart-policy.ts';

/** How often the supervisor pings every actor thread, and how late an answer may be. */
export const HEARTBEAT_INTERVAL_MS = 1_000;
export const HEARTBEAT_DEADLINE_MS = 2_000;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyThread = ActorThread<any>;

export interface RestartEvent {
  kind: ActorKind;
  id: number;
  restarts: number;
  reason: string;
}

export interface SupervisionHooks {
  /** Start the thread of `kind`/`id` again (its backoff has passed). */
  restart(kind: ActorKind, id: number): void;
  /** A failure the lifecycle must handle: the proxy cannot go on as it is. */
  giveUp(failure: { actor: ActorKind; id: number; message: string }): void;
  /** Bookkeeping of the caller for a thread that just failed (restarted or not). */
  failed?(thread: AnyThread): void;
  /** Every heartbeat's outcome (the pool's decides `pool_healthy`). */
  heartbeat?(thread: AnyThread, answered: boolean): void;
  /** A restart was scheduled. */
  restarting?(event: RestartEvent): void;
}

export class ThreadSupervisor {
  readonly #log: Logger;
  readonly #hooks: SupervisionHooks;
  readonly #policies = new Map<string, RestartPolicy>();
  /** Threads that finished starting (or are restarts): only those are restarted when they fail. */
  readonly #running = new Set<AnyThread>();
  /** Set once draining begins: failed threads are not restarted then. */
  draining = false;
  /** Set once teardown begins: failures are expected, nothing is restarted or reported. */
  closing = false;

  constructor(log: Logger, hooks: SupervisionHooks) {
    this.#log = log;
    this.#hooks = hooks;
  }

  spawn<Api>(kind: ActorKind, id: number): ActorThread<Api> {
    const onFailure = (message: string, code?: string) => this.#onFailure(thread, message, code);
    const thread: ActorThread<Api> = new ActorThread<Api>(kind, id, onFailure);
    return thread;
  }

  /** A restarted thread: a failure while it starts again counts against its restart budget. */
  restarting(thread: AnyThread): void {
    this.#running.add(thread);
  }

  /** The thread has started: from now on it is watched, and restarted when it fails. */
  running(thread: AnyThread): void {
    this.#running.add(thread);
    this.#watch(thread);
  }

  restartsOf(kind: ActorKind, id: number): number {
    return this.#policies.get(`${kind}:${id}`)?.total ?? 0;
  }

  #onFailure(thread: AnyThread, message: string, code?: string): void {
    const { kind, id } = thread;
    this.#log.error(
      { event: 'actor.failed', actor: kind, id, ...(code !== undefined && { code }), reason: message },
      `${kind} actor failed`,
    );
    const wasRunning = this.#running.delete(thread);
    this.#hooks.failed?.(thread);
    if (this.closing) return;
    if (!wasRunning || this.draining) return this.#hooks.giveUp({ actor: kind, id, message });
    const key = `${kind}:${id}`;
    const policy = this.#policies.get(key) ?? new RestartPolicy();
    this.#policies.set(key, policy);
    const decision = policy.onFailure(Date.now());
    if (!decision.restart) {
      const reason = `${kind} actor ${id} failed ${decision.recent + 1} times within ${defaultRestartLimits.windowMs / 1000} s (last: ${message})`;
      this.#log.error(
        { event: 'actor.gave_up', actor: kind, id, failures: decision.recent + 1, restarts: policy.total },
        `giving up: ${reason}`,
      );
      return this.#hooks.giveUp({ actor: kind, id, message: reason });
    }
    this.#log.warn(
      { event: 'actor.restarting', actor: kind, id, delay_ms: decision.delayMs, restarts: policy.total },
      `restarting the ${kind} actor in ${decision.delayMs} ms`,
    );
    this.#hooks.restarting?.({ kind, id, restarts: policy.total, reason: message });
    setTimeout(() => {
      if (!this.closing && !this.draining) this.#hooks.restart(kind, id);
    }, decision.delayMs);
  }

  /** Every running thread answers a ping each second, within two; a hung one is ended (and so restarted). */
  #watch(thread: AnyThread): void {
    const beat = () => {
      if (this.closing || !this.#running.has(thread)) return;
      const deadline = new Promise<false>((resolve) => setTimeout(() => resolve(false), HEARTBEAT_DEADLINE_MS).unref());
      const answer = (thread as ActorThread<{ heartbeat(): number }>)
        .call((api) => api.heartbeat())
        .then(
          () => true,
          () => false,
        );
      void Promise.race([answer, deadline]).then((answered) => {
        if (!this.#running.has(thread)) return;
        this.#hooks.heartbeat?.(thread, answered);
        if (!answered) {
          this.#log.error(
            { event: 'actor.missed_heartbeat', actor: thread.kind, id: thread.id, deadline_ms: HEARTBEAT_DEADLINE_MS },
            `${thread.kind} actor missed its heartbeat`,
          );
          return thread.kill(`no heartbeat within ${HEARTBEAT_DEADLINE_MS} ms`);
        }
        setTimeout(beat, HEARTBEAT_INTERVAL_MS).unref();
      });
    };
    setTimeout(beat, HEARTBEAT_INTERVAL_MS).unref();
  }
}
