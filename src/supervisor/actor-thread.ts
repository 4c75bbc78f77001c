/**
 * The supervisor's handle on one actor thread: the comlink proxy to its API,
 * and failure detection. A thread that throws or exits without being asked
 * to becomes one `onFailure` call (never an unhandled error in the main
 * thread), and calls still pending on it are rejected: comlink alone would
 * leave them hanging forever (comlink issue #601).
 */
import { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { Logger } from '../log.ts';
import type { ActorKind } from '../protocol.ts';

// This repository runs the .ts sources; the published package runs the built .js.
const extension = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
const entryFiles: Record<ActorKind, URL> = {
  listener: new URL(`../actors/listener.worker.${extension}`, import.meta.url),
  pool: new URL(`../actors/pool.worker.${extension}`, import.meta.url),
  'health-checker': new URL(`../actors/health-checker.worker.${extension}`, import.meta.url),
};

/**
 * The pool and the health checker allocate little and never in bursts: a
 * small young generation (V8's semi-spaces otherwise grow to several MB
 * each) keeps their resident memory down at no cost. Listener threads keep
 * V8's default: under load a small one would mean a scavenge every few
 * requests.
 */
const QUIET_YOUNG_GENERATION_MB = 1;
const limitsOf: Record<ActorKind, { resourceLimits?: { maxYoungGenerationSizeMb: number } }> = {
  listener: {},
  pool: { resourceLimits: { maxYoungGenerationSizeMb: QUIET_YOUNG_GENERATION_MB } },
  'health-checker': { resourceLimits: { maxYoungGenerationSizeMb: QUIET_YOUNG_GENERATION_MB } },
};

export class ActorThread<Api> {
  readonly kind: ActorKind;
  readonly id: number;
  readonly #worker: Worker;
  readonly #api: Comlink.Remote<Api>;
  readonly #died: Promise<never>;
  #stopping = false;
  #failed = false;
  #fail: (message: string, code?: string) => void = () => {};

  /** `onFailure` gets the thread's error code when it has one (`ERR_…`, or the error's name), for the log. */
  constructor(kind: ActorKind, id: number, onFailure: (message: string, code?: string) => void) {
    this.kind = kind;
    this.id = id;
    this.#worker = new Worker(entryFiles[kind], { name: `sluice-${kind}-${id}`, ...limitsOf[kind] });
    this.#api = Comlink.wrap<Api>(nodeEndpoint(this.#worker));
    const fail = (message: string, code?: string) => {
      if (this.#failed || this.#stopping) return;
      this.#failed = true;
      onFailure(message, code);
    };
    this.#fail = fail;
    this.#died = new Promise<never>((_, reject) => {
      this.#worker.once('error', (error) => {
        fail(`${kind} thread ${id} threw: ${error.message}`, (error as NodeJS.ErrnoException).code ?? error.name);
        reject(error);
      });
      this.#worker.once('exit', (code) => {
        fail(`${kind} thread ${id} exited with code ${code}`);
        reject(new Error(`${kind} thread ${id} exited with code ${code}`));
      });
    });
    // Nobody may be awaiting a call when the thread dies: this death is reported through onFailure.
    this.#died.catch(reportedThroughOnFailure);
  }

  /** False once the thread failed or was stopped. */
  get alive(): boolean {
    return !this.#failed && !this.#stopping;
  }

  get api(): Comlink.Remote<Api> {
    return this.#api;
  }

  /** A hung thread: count it as failed (once), then end it. */
  kill(reason: string): void {
    this.#fail(reason);
    void this.#worker.terminate();
  }

  /** A call on the thread that rejects, instead of hanging, if the thread dies first. */
  call<T>(invoke: (api: Comlink.Remote<Api>) => Promise<T>): Promise<T> {
    return Promise.race([invoke(this.#api), this.#died]);
  }

  /**
   * A call nobody waits for. A failure is logged with its code: at warn while
   * the thread lives, at debug once it failed (that failure is reported as the thread's).
   */
  tell(log: Logger, call: string, invoke: (api: Comlink.Remote<Api>) => Promise<unknown>): void {
    this.call(invoke).catch(this.logFailure(log, call));
  }

  /** Logs a failed call with its code, as `tell` does, for a caller that goes on without its answer. */
  logFailure(log: Logger, call: string): (error: unknown) => void {
    return (error) => {
      const line = { actor: this.kind, id: this.id, call, code: errorCode(error) };
      const message = `${call} on ${this.kind} thread ${this.id} failed: ${(error as Error | undefined)?.message ?? String(error)}`;
      if (this.alive) log.warn(line, message);
      else log.debug(line, message);
    };
  }

  /** Let the actor flush what it holds, then end the thread. */
  async stop(stopCall: (api: Comlink.Remote<Api>) => Promise<void>, timeoutMs = 2_000): Promise<void> {
    if (this.#failed) return;
    // Whether the actor flushed or not, the thread ends: a stop that failed only ends it sooner.
    const graceful = this.call(stopCall).then(
      () => true,
      () => false,
    );
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
    await Promise.race([graceful, deadline]);
    this.#stopping = true;
    await this.#worker.terminate();
  }
}

function reportedThroughOnFailure(): void {}

/** `ERR_…` or a system code when the error has one, else its name (comlink keeps only name and message). */
export function errorCode(error: unknown): string {
  const { code, name } = (error ?? {}) as { code?: unknown; name?: unknown };
  if (typeof code === 'string') return code;
  return typeof name === 'string' ? name : 'Error';
}
