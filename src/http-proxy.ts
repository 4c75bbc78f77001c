/**
 * The embedding API: the seed's `HttpProxy`, in TypeScript.
 *
 *   const proxy = HttpProxy.init({ listen_port: 8080, max_connections: 10000 });
 *   await proxy.addBackend('127.0.0.1', 3000, 1);
 *   await proxy.serve();          // settles when the proxy has stopped
 *
 * It is a thin layer over the same Supervisor the CLI runs: the same
 * lifecycle machine, actors, drain and logs.
 */
import type { Actor, InspectionEvent } from 'xstate';
import { parseConfig } from './config/load.ts';
import type { Config, ConfigInput } from './config/schema.ts';
import { AlreadyServingError, StartupTimeout, UnknownBackendError, type SluiceError } from './errors.ts';
import { createLogger, resolveLogFormat, stdoutIsTTY } from './log.ts';
import type { TransitionRecord } from './machines/history.ts';
import type { LifecycleState, lifecycleMachine } from './machines/lifecycle.ts';
import { backendId } from './protocol.ts';
import { Supervisor } from './supervisor/supervisor.ts';

type ProxyConfigInput = NonNullable<ConfigInput['proxy']>;

export interface LifecycleHooks {
  /** Called before the listeners start accepting connections. */
  onStart?(proxy: HttpProxy): unknown;
  /** Called after the listeners stopped accepting connections. */
  onStop?(proxy: HttpProxy): unknown;
}

/** The config file's `proxy` section, plus the other sections and the hooks. */
export interface HttpProxyOptions extends ProxyConfigInput {
  backends?: ConfigInput['backends'];
  health_check?: ConfigInput['health_check'];
  load_balancing?: ConfigInput['load_balancing'];
  log?: ConfigInput['log'];
  hooks?: LifecycleHooks;
  /** Stop on SIGTERM/SIGINT as the CLI does. Off by default: the embedding program owns its signals. */
  handleSignals?: boolean;
  /** Watch the lifecycle actor (XState inspection events). */
  inspect?: (event: InspectionEvent) => void;
}

const nonProxyKeys = new Set([
  'backends',
  'health_check',
  'load_balancing',
  'log',
  'hooks',
  'handleSignals',
  'inspect',
]);

export class HttpProxy {
  /** The resolved `proxy` section: `listen_port`, `max_connections`, timeouts… */
  readonly config: Config['proxy'];
  /** Every section, resolved, as a config file would give it. */
  readonly settings: Config;
  readonly #supervisor: Supervisor;
  #serving: Promise<void> | undefined;
  #failure: SluiceError | undefined;

  readonly pool = { isHealthy: (): boolean => this.#supervisor.poolHealthy };
  /** sluice has no cache yet; present so readiness code written for the seed runs unchanged. */
  readonly cache = { isHealthy: (): boolean => true };

  private constructor(settings: Config, options: HttpProxyOptions) {
    this.settings = settings;
    this.config = settings.proxy;
    const logOptions = {
      ...settings.log,
      format: resolveLogFormat(settings.log.format, stdoutIsTTY(), settings.log.file),
    };
    const hooks = options.hooks;
    const logger = createLogger(logOptions, { actor: 'supervisor' });
    const admin = settings.admin;
    this.#supervisor = new Supervisor({
      config: settings,
      logOptions,
      logger,
      // Loaded only when configured: it brings prom-client and the dashboard with it.
      ...(admin && { admin: async (view) => new (await import('./admin/server.ts')).AdminServer(view, admin, logger) }),
      handleSignals: options.handleSignals ?? false,
      inspect: options.inspect,
      hooks: {
        // Called as methods of the hooks object, as the user wrote them.
        ...(hooks?.onStart && { onStart: () => hooks.onStart?.(this) }),
        ...(hooks?.onStop && { onStop: () => hooks.onStop?.(this) }),
      },
    });
  }

  /** Validates the options (a ConfigError names the bad key and value); nothing starts yet. */
  static init(options: HttpProxyOptions = {}): HttpProxy {
    const proxy = Object.fromEntries(Object.entries(options).filter(([key]) => !nonProxyKeys.has(key)));
    const document = {
      proxy,
      ...(options.backends && { backends: options.backends }),
      ...(options.health_check && { health_check: options.health_check }),
      ...(options.load_balancing && { load_balancing: options.load_balancing }),
      ...(options.log && { log: options.log }),
    };
    return new HttpProxy(parseConfig(document, 'HttpProxy.init options'), options);
  }

  /** Before serving it joins the set the proxy starts with; while serving it goes through the pool actor. */
  async addBackend(address: string, port: number, weight = 1): Promise<void> {
    const spec = parseConfig({ backends: [{ address, port, weight }] }, 'addBackend').backends[0]!; // the one given
    if (!this.#serving) {
      if (!this.settings.backends.some((b) => backendId(b) === backendId(spec))) this.settings.backends.push(spec);
      return;
    }
    await this.#supervisor.addBackend(spec);
  }

  /** Requests already on the backend finish. Rejects with SLUICE_UNKNOWN_BACKEND if there is none. */
  async removeBackend(address: string, port: number): Promise<void> {
    const id = backendId({ address, port });
    if (!this.#serving) {
      const index = this.settings.backends.findIndex((b) => backendId(b) === id);
      if (index === -1) throw new UnknownBackendError(id);
      this.settings.backends.splice(index, 1);
      return;
    }
    if (!(await this.#supervisor.removeBackend({ address, port }))) throw new UnknownBackendError(id);
  }

  /**
   * Starts the proxy. The promise settles when it has stopped: it resolves
   * after a stop that was asked for, and rejects with a typed error
   * (`StartupTimeout`, `ListenError`, `PidFileLockedError`, `WorkerFailedError`)
   * when it could not start or failed while running.
   */
  serve(): Promise<void> {
    if (this.#serving) return Promise.reject(new AlreadyServingError());
    this.#serving = this.#supervisor.run().then((outcome) => {
      if (outcome.error) {
        this.#failure = outcome.error;
        throw outcome.error;
      }
    });
    return this.#serving;
  }

  /** The running XState actor: `subscribe` to its snapshots. */
  get lifecycle(): Actor<typeof lifecycleMachine> {
    return this.#supervisor.lifecycle;
  }

  /** Every change of lifecycle state so far: `{ at, from, to, event }`. */
  get history(): readonly TransitionRecord[] {
    return this.#supervisor.history;
  }

  get state(): LifecycleState {
    return this.#supervisor.state;
  }

  /** The port the listeners bound (useful with `listen_port: 0`), once bound. */
  get port(): number | undefined {
    return this.#supervisor.port;
  }

  isHealthy(): boolean {
    return this.state === 'healthy';
  }

  /** Every upstream requests can reach has its `health_check.min_healthy` backends enabled, healthy and not ejected. */
  hasHealthyBackends(): boolean {
    return this.#supervisor.backendsAvailable;
  }

  /** Client connections open now, over every listener thread. */
  getActiveConnections(): number {
    return this.#supervisor.activeConnections();
  }

  /** Resolves once healthy; rejects with StartupTimeout after `timeoutMs`, or with the failure if it stopped. */
  waitForHealthy(timeoutMs: number = this.config.startup_timeout_ms): Promise<void> {
    return new Promise((resolve, reject) => {
      const settle = (error?: Error) => {
        clearTimeout(timer);
        subscription.unsubscribe();
        if (error) reject(error);
        else resolve();
      };
      const check = () => {
        const state = this.state;
        if (state === 'healthy') settle();
        else if (state === 'stopped' || state === 'draining')
          settle(this.#failure ?? new StartupTimeout(`the proxy is ${state}`));
      };
      const subscription = this.lifecycle.subscribe({ next: check, error: (error: unknown) => settle(error as Error) });
      const timer = setTimeout(() => settle(new StartupTimeout(`not healthy within ${timeoutMs} ms`)), timeoutMs);
      check();
    });
  }

  /** Begin draining: /ready turns 503, the listeners close after the grace period, in-flight requests finish. */
  stopAccepting(): void {
    this.#supervisor.stop('stopAccepting');
  }

  /** Destroys every client connection still open; resolves with how many there were. */
  closeAllConnections(): Promise<number> {
    return this.#supervisor.forceCloseConnections();
  }

  /**
   * Graceful stop; resolves when stopped. After `timeoutMs` the drain is cut
   * short (as by a second signal). Never rejects: a failed run was reported
   * by `serve()`.
   */
  async shutdown(options: { timeoutMs?: number } = {}): Promise<void> {
    if (!this.#serving) return;
    const stopped = this.#serving.catch(reportedByServe);
    this.#supervisor.stop('shutdown');
    if (options.timeoutMs === undefined) return stopped;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), options.timeoutMs)));
    if ((await Promise.race([stopped, late])) === 'late') this.#supervisor.stop('shutdown-timeout');
    clearTimeout(timer);
    return stopped;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }
}

function reportedByServe(): void {
  // `shutdown()` never rejects: the failure of a run is what `serve()` rejects with.
}
