/**
 * The supervisor: the main thread of a sluice process.
 *
 *   main thread (supervisor)                 worker threads (actors)
 *   ┌────────────────────────────────┐       ┌──────────────────────────────┐
 *   │ CLI, config, PID file, signals │       │ pool            backends,    │
 *   │ lifecycle machine (XState)     │◄─────►│                 weights,     │
 *   │   starting → healthy →         │comlink│                 health,      │
 *   │   draining → stopped           │       │                 ejections    │
 *   │ lifecycle hooks (onStart/Stop) │       ├──────────────────────────────┤
 *   │ ActorRuntime: spawns, wires,   │◄─────►│ health-checker  probes,      │
 *   │   relays control messages      │       │                 hysteresis   │
 *   │ ThreadSupervisor: heartbeats,  │       ├──────────────────────────────┤
 *   │   restarts with backoff        │◄─────►│ listener × N    accept,      │
 *   │ hot restart (SIGUSR2): hands   │       │  (reusePort,    parse (own   │
 *   │   the listening sockets over   │       │   or handed     HTTP/1.1 or  │
 *   │ admin listener: /status,       │       │   over)         Node http),  │
 *   │   /metrics, /events, dashboard │       │                 balance,     │
 *   │ transition log (pino)          │       │                 forward,     │
 *   └────────────────────────────────┘       │                 /health …,   │
 *          │ SharedArrayBuffers:             │                 request hooks│
 *          │  live connections (Atomics),    │                 upstream     │
 *          └─ in-flight, a row per thread ──►│                 keep-alive   │
 *                                            └──────────────────────────────┘
 *
 * Control flows through the supervisor: health flips → pool → snapshot →
 * every listener; passive failures listener → pool; lifecycle state → every
 * listener. A request is parsed, balanced, forwarded and answered inside one
 * listener thread.
 */
import { EventEmitter } from 'node:events';
import { createActor, toPromise, type Actor, type InspectionEvent } from 'xstate';
import type { Config } from '../config/schema.ts';
import { backendsAvailable, allBackends, discoveredGroups } from '../config/upstream-groups.ts';
import { ListenError, SluiceError, StartupTimeout, WorkerFailedError } from '../errors.ts';
import { reopenLogFiles, type Logger, type LogOptions } from '../log.ts';
import { transitionInspector, type TransitionRecord } from '../machines/history.ts';
import {
  exitCodeOf,
  lifecycleMachine,
  topLevelState,
  type Failure,
  type LifecycleContext,
  type LifecycleState,
  type StopReason,
} from '../machines/lifecycle.ts';
import { backendId, type BackendSpec } from '../protocol.ts';
import { planReload } from '../config/reload.ts';
import { readCertificates } from '../config/certificates.ts';
import { listenSpecs, probeAddress } from '../config/listeners.ts';
import type { CertificateInfo, ListenerTls } from '../protocol.ts';
import type { InheritedSockets } from './inherited-sockets.ts';
import { acquirePidFile, releasePidFile, takeOverPidFile } from './pid-file.ts';
import { localUrl, proxyInfoFile, writeProxyInfo, type ProxyInfo } from './proxy-info.ts';
import type { WaitingParent } from './ready-channel.ts';
import { ActorRuntime } from './runtime.ts';
import { startSuccessor, type CommandLine } from './successor.ts';
import type { HandedOverKeys } from './ticket-key-rotation.ts';
import { errorMessage } from './actor-thread.ts';
import type {
  AdminListener,
  BackendRow,
  ReloadOutcome,
  RestartOutcome,
  SupervisorEvents,
  SupervisorView,
  UpstreamStatus,
  WorkerRow,
} from './supervisor-view.ts';
import { onParentExit, onSignal, onStopSignals, startedByPackageManager } from './signals.ts';
import { listenerThreadCount } from './workers.ts';

const transitionMessages: Record<string, string> = {
  healthy: 'Proxy is healthy and accepting connections',
  draining: 'Initiating graceful shutdown...',
};

/** How much longer than its startup timeout a hot restart's successor may take before it is killed. */
const SUCCESSOR_GRACE_MS = 5_000;

/** A certificate with fewer days left than this is warned about (as most monitoring does: two weeks). */
const CERTIFICATE_WARNING_DAYS = 14;
const DAY_MS = 24 * 60 * 60 * 1000;
/** How often a running proxy looks at its certificates' expiry again. */
const EXPIRY_CHECK_MS = 12 * 60 * 60 * 1000;

/** How long a lifecycle hook may take before shutdown goes on without it. */
export const HOOK_TIMEOUT_MS = 5_000;

export interface SupervisorHooks {
  /** Before the listeners accept (before the actors start). */
  onStart?: () => unknown;
  /** After the listeners stopped accepting. */
  onStop?: () => unknown;
}

export interface SupervisorOptions {
  config: Config;
  /** Reads the configuration anew (SIGHUP); absent when there is no file to read. */
  reloadConfig?: () => Config;
  logOptions: LogOptions;
  logger: Logger;
  /** Handle SIGTERM/SIGINT (the CLI does; an embedding program may not want to). */
  handleSignals?: boolean;
  hooks?: SupervisorHooks;
  /** Passed on to the lifecycle actor, e.g. to watch it in a debugger. */
  inspect?: (event: InspectionEvent) => void;
  /** The command line that starts this proxy again: enables hot restart (SIGUSR2). */
  restartCommand?: CommandLine;
  /** Set in a hot restart's successor: the listening sockets of the process it replaces. */
  inherited?: InheritedSockets;
  /** Set in a hot restart's successor: the session-ticket keys of the process it replaces. */
  ticketKeys?: HandedOverKeys;
  /** The absolute path of the config file, for the file beside the PID file (proxy-info.ts); null: none. */
  configFile?: string | null;
  /** The admin listener over a read-only view of this supervisor; started before the actors, closed last. */
  /** Makes the admin listener (a promise: the entry points load it only when configured). */
  admin?: (view: SupervisorView) => AdminListener | Promise<AdminListener>;
  /** A parent waiting for this process to be healthy (`-d`, a hot restart's predecessor). */
  waitingParent?: WaitingParent;
}

/** How a run ended. `error` is set when it ended in a runtime failure. */
export interface StopOutcome {
  exitCode: 0 | 1;
  reason: StopReason | 'pid_file_locked';
  error?: SluiceError;
}

export type { ReloadOutcome, RestartOutcome, SupervisorEvents } from './supervisor-view.ts';

export class Supervisor implements SupervisorView {
  config: Config;
  lastReload: ReloadOutcome | undefined;
  lastRestart: RestartOutcome | undefined;
  readonly #restartCommand: CommandLine | undefined;
  readonly #inherited: InheritedSockets | undefined;
  readonly #configFile: string | null;
  #successorStarting = false;
  readonly #reloadConfig: (() => Config) | undefined;
  readonly history: TransitionRecord[] = [];
  /** Transitions and health flips as they happen (the admin /events stream listens here). */
  readonly events = new EventEmitter<SupervisorEvents>();
  readonly startedAt = new Date();
  readonly #log: Logger;
  readonly #runtime: ActorRuntime;
  readonly #lifecycle: Actor<typeof lifecycleMachine>;
  readonly #cleanups: (() => void)[] = [];
  readonly #hooks: SupervisorHooks;
  readonly #createAdmin: ((view: SupervisorView) => AdminListener | Promise<AdminListener>) | undefined;
  readonly #waitingParent: WaitingParent | undefined;
  #pidFileTaken = false;
  #onStopCalled = false;
  #drainStartedAt: number | undefined;
  #admin: AdminListener | undefined;
  /** The admin listener's port, when one is configured and bound. */
  adminPort: number | undefined;
  /** How long the drain took, once it is over. */
  drainDurationSeconds: number | undefined;

  constructor(options: SupervisorOptions) {
    this.config = options.config;
    this.#reloadConfig = options.reloadConfig;
    this.#log = options.logger;
    this.#hooks = options.hooks ?? {};
    this.#restartCommand = options.restartCommand;
    this.#inherited = options.inherited;
    this.#configFile = options.configFile ?? null;
    this.#createAdmin = options.admin;
    this.#waitingParent = options.waitingParent;
    this.#runtime = new ActorRuntime(
      options.config,
      options.logOptions,
      options.logger,
      {
        healthChanged: (event) => this.events.emit('health', event),
        restarting: (event) => this.events.emit('restart', event),
        listening: () => this.#writeProxyInfo(),
      },
      { sockets: options.inherited, ticketKeys: options.ticketKeys },
    );
    const proxy = options.config.proxy;
    const recordTransitions = transitionInspector((record) => this.#onTransition(record));
    // The lifecycle's effects, as named in lifecycle.ts; the inspector below only observes.
    const machine = lifecycleMachine.provide({
      actors: this.#runtime.machineActors(),
      actions: {
        handOverPidFile: () => this.#handOverPidFile(),
        writeProxyInfo: () => this.#writeProxyInfo(),
        announceHealthy: () => this.#runtime.announce('healthy'),
        announceDraining: () => this.#runtime.announce('draining'),
        announceStopped: () => this.#runtime.announce('stopped'),
        reportReady: () => this.#waitingParent?.ready(),
        runOnStop: () => void this.#runOnStop(),
      },
    });
    this.#lifecycle = createActor(machine, {
      input: {
        startupTimeoutMs: proxy.startup_timeout_ms,
        gracePeriodMs: proxy.grace_period_ms,
        drainTimeoutMs: proxy.drain_timeout_ms,
        requireHealthyBackends: proxy.require_healthy_backends,
      },
      inspect: (event) => {
        recordTransitions(event);
        options.inspect?.(event);
      },
    });
    if (options.handleSignals) {
      this.#cleanups.push(
        onStopSignals((signal) => this.stop(signal), { duplicateWindowMs: startedByPackageManager() ? 500 : 0 }),
      );
      if (startedByPackageManager()) this.#cleanups.push(onParentExit(() => this.stop('parent-exit')));
      this.#cleanups.push(onSignal('SIGUSR1', () => this.reopenLogs()));
      this.#cleanups.push(onSignal('SIGHUP', () => void this.reload()));
      this.#cleanups.push(onSignal('SIGUSR2', () => void this.hotRestart()));
    }
  }

  get lifecycle(): Actor<typeof lifecycleMachine> {
    return this.#lifecycle;
  }

  /** The bound port (useful with port 0), once listening. */
  get port(): number | undefined {
    return this.#runtime.port;
  }

  certificates(): CertificateInfo[] {
    return this.#runtime.certificates();
  }

  /** Each listener's address and whether it speaks TLS, with its bound port once known. */
  listeners(): { host: string; port: number; tls: boolean }[] {
    const ports = this.#runtime.ports;
    return listenSpecs(this.config).map((spec, index) => ({
      host: spec.host,
      port: ports?.[index] ?? spec.port,
      tls: spec.tls !== null,
    }));
  }

  get state(): LifecycleState {
    return topLevelState(this.#lifecycle.getSnapshot().value);
  }

  get poolHealthy(): boolean {
    return this.#runtime.poolHealthy;
  }

  /** Backends enabled, healthy and not ejected, in the pool's latest snapshot. */
  get selectableBackends(): number {
    return this.#runtime.snapshot?.backends.filter((b) => b.selectable).length ?? 0;
  }

  /** Every upstream requests can reach has its `health_check.min_healthy` selectable backends. */
  get backendsAvailable(): boolean {
    return backendsAvailable(this.config, this.#runtime.snapshot);
  }

  activeConnections(): number {
    return this.#runtime.activeConnections();
  }

  rejectedConnections(): number {
    return this.#runtime.rejectedConnections();
  }

  backends(): BackendRow[] {
    return this.#runtime.backends();
  }

  upstreams(): UpstreamStatus[] {
    return this.#runtime.upstreams();
  }

  workers(): WorkerRow[] {
    return this.#runtime.workers();
  }

  dnsResolutions(): { upstream: string; result: string; count: number }[] {
    return this.#runtime.dnsResolutions();
  }

  threadMetrics(): Promise<object[][]> {
    return this.#runtime.threadMetrics();
  }

  forceCloseConnections(): Promise<number> {
    return this.#runtime.forceCloseConnections();
  }

  /** While serving: through the pool and health-checker actors. */
  addBackend(spec: BackendSpec): Promise<boolean> {
    return this.#runtime.addBackend(spec);
  }

  removeBackend(spec: Pick<BackendSpec, 'address' | 'port'>): Promise<boolean> {
    return this.#runtime.removeBackend(backendId(spec));
  }

  /** SIGUSR1, as nginx: logrotate moved the log file, every thread opens it anew. */
  reopenLogs(): void {
    reopenLogFiles();
    this.#runtime.reopenLogs();
    this.#log.info({ event: 'logs.reopened', signal: 'SIGUSR1' }, 'log files reopened');
  }

  /**
   * SIGHUP: read and check the configuration again. Valid: backends,
   * weights, health checks, balancing, timeouts and limits apply live, and
   * the lifecycle records a `healthy → healthy` RELOAD transition. Invalid:
   * one error line naming the file, the path and the value; the running
   * configuration stays.
   */
  async reload(): Promise<ReloadOutcome> {
    const at = new Date().toISOString();
    const state = this.state;
    if (!this.#reloadConfig || state !== 'healthy') {
      const error = this.#reloadConfig
        ? `reload ignored while ${state}`
        : 'no configuration file to reload (started without -c)';
      this.#log.warn({ signal: 'SIGHUP' }, `Reload: ${error}`);
      return (this.lastReload = { at, ok: false, error });
    }
    let next: Config;
    let effective: Config;
    let needsRestart: string[];
    let certificates: (ListenerTls | null)[];
    try {
      next = this.#reloadConfig();
      ({ effective, needsRestart } = planReload(this.config, next));
      // Every certificate and key is read again: the same files may hold new ones.
      certificates = readCertificates(effective, this.#configFile ?? '(config)');
    } catch (error) {
      // A ConfigError carries its SLUICE_ code, a file read its errno code; anything else is an invalid config.
      const code = (error as { code?: unknown } | null | undefined)?.code;
      const message = errorMessage(error);
      this.#log.error(
        { event: 'config.reload_failed', code: typeof code === 'string' ? code : 'SLUICE_CONFIG_INVALID' },
        `Reload failed: ${message}; the running configuration stays`,
      );
      return (this.lastReload = { at, ok: false, error: message });
    }
    if (needsRestart.length > 0)
      this.#log.warn(
        { needs_restart: needsRestart },
        `Reload: ${needsRestart.join(', ')} changed and need a hot restart to apply (SIGUSR2: sluice restart)`,
      );
    this.config = effective;
    const refused = await this.#runtime.reconfigure(effective, certificates);
    this.#warnExpiringCertificates();
    const proxy = effective.proxy;
    this.#lifecycle.send({
      type: 'RELOAD',
      timeouts: {
        startupTimeoutMs: proxy.startup_timeout_ms,
        gracePeriodMs: proxy.grace_period_ms,
        drainTimeoutMs: proxy.drain_timeout_ms,
      },
    });
    if (refused.length > 0) {
      const error = refused.map((failure) => failure.message).join('; ');
      this.#log.error(
        { code: 'SLUICE_TLS_CERTIFICATE' },
        `Reload: a listener refused the new certificates and keeps its own: ${error}`,
      );
      return (this.lastReload = { at, ok: false, error, needs_restart: needsRestart });
    }
    return (this.lastReload = { at, ok: true, needs_restart: needsRestart });
  }

  /** A warning per certificate with less than CERTIFICATE_WARNING_DAYS left: at start, at each reload, twice a day. */
  #warnExpiringCertificates(): void {
    const now = Date.now();
    for (const certificate of this.#runtime.certificates()) {
      const left = Date.parse(certificate.not_after) - now;
      if (left >= CERTIFICATE_WARNING_DAYS * DAY_MS) continue;
      const days = Math.max(0, Math.floor(left / DAY_MS));
      this.#log.warn(
        {
          code: 'SLUICE_TLS_CERTIFICATE_EXPIRES_SOON',
          certificate: certificate.name,
          listener: certificate.listener,
          not_after: certificate.not_after,
          days_left: days,
        },
        left <= 0
          ? `The certificate ${certificate.name} has expired`
          : `The certificate ${certificate.name} expires in ${days} days`,
      );
    }
  }

  /** The command line that starts the successor, or why a hot restart cannot start now. */
  #restartCheck(): { command: CommandLine } | { refused: string } {
    if (!this.#restartCommand)
      return { refused: 'hot restart needs the sluice command line (an embedding program restarts itself)' };
    if (this.state !== 'healthy') return { refused: `hot restart ignored while ${this.state}` };
    if (this.#successorStarting) return { refused: 'hot restart already in progress' };
    return { command: this.#restartCommand };
  }

  /**
   * SIGUSR2: start a successor with the same command line, handing it the
   * listening sockets; once it reports healthy, drain this process. If it
   * fails or is not healthy in time, this process keeps serving, untouched.
   */
  async hotRestart(): Promise<RestartOutcome> {
    const at = new Date().toISOString();
    const check = this.#restartCheck();
    if ('refused' in check) {
      this.#log.warn({ signal: 'SIGUSR2' }, `Hot restart: ${check.refused}`);
      return (this.lastRestart = { at, ok: false, error: check.refused });
    }
    this.#successorStarting = true;
    try {
      const listeners = await this.#runtime.listeningFds();
      const fds = listeners.reduce((sum, l) => sum + l.fds.length, 0);
      this.#log.info({ signal: 'SIGUSR2', fds }, 'Hot restart: starting a new process');
      const outcome = await startSuccessor({
        command: check.command,
        listeners,
        ticketKeys: this.#runtime.ticketKeyHandover,
        timeoutMs: this.config.proxy.startup_timeout_ms + SUCCESSOR_GRACE_MS,
      });
      if (!outcome.ok) {
        this.#log.error(
          { code: 'SLUICE_HOT_RESTART_FAILED' },
          `Hot restart failed (new process: ${outcome.message}); this process keeps serving`,
        );
        return (this.lastRestart = { at, ok: false, error: outcome.message });
      }
      this.#log.info(
        { successor_pid: outcome.pid },
        `Hot restart: the new process (PID: ${outcome.pid}) is healthy; this one drains`,
      );
      this.lastRestart = { at, ok: true, pid: outcome.pid };
      this.stop('SIGUSR2');
      return this.lastRestart;
    } finally {
      this.#successorStarting = false;
    }
  }

  /** Ask for a stop: the machine decides (drain when healthy, at once otherwise). */
  stop(reason: string): void {
    this.#log.info({ event: 'stop.requested', signal: reason }, `Received ${reason}`);
    this.#lifecycle.send({ type: 'STOP', signal: reason });
  }

  /** Runs the whole lifecycle; resolves with how it ended. */
  async run(): Promise<StopOutcome> {
    const proxy = this.config.proxy;
    this.#log.info(
      {
        port: proxy.listen_port,
        host: proxy.listen_host,
        workers: listenerThreadCount(proxy.workers),
        backends: allBackends(this.config).length,
      },
      `Starting proxy on port ${proxy.listen_port}...`,
    );
    if (allBackends(this.config).length === 0 && discoveredGroups(this.config).size === 0) {
      this.#log.warn(
        { event: 'backends.none' },
        proxy.require_healthy_backends
          ? 'no backends configured: the proxy cannot become healthy'
          : 'no backends configured: every request will get 503',
      );
    }
    // The CLI checked them when it loaded the file; an embedding program's config is checked here.
    try {
      this.#runtime.certificateMaterial = readCertificates(this.config, this.#configFile ?? '(config)');
    } catch (error) {
      const err = error as SluiceError;
      this.#log.error({ code: err.code }, `Failed to start: ${err.message}`);
      this.#cleanup();
      return { exitCode: 1, reason: 'listen_failed', error: err };
    }
    this.#warnExpiringCertificates();
    const expiryCheck = setInterval(() => this.#warnExpiringCertificates(), EXPIRY_CHECK_MS).unref();
    this.#cleanups.push(() => clearInterval(expiryCheck));
    // A successor takes the PID file from its predecessor only once healthy (handOverPidFile).
    if (proxy.pid_file && !this.#inherited) {
      try {
        const outcome = acquirePidFile(proxy.pid_file);
        this.#ownPidFile(proxy.pid_file);
        this.#log.info(
          { pid_file: proxy.pid_file, outcome },
          outcome === 'created' ? 'PID file written' : 'stale PID file replaced',
        );
        this.#writeProxyInfo();
      } catch (error) {
        const err = error as SluiceError;
        this.#log.error({ code: err.code, pid_file: proxy.pid_file }, `Failed to start: ${err.message}`);
        this.#cleanup();
        return { exitCode: 1, reason: 'pid_file_locked', error: err };
      }
    }
    if (this.config.admin && this.#createAdmin) {
      const admin = await this.#createAdmin(this);
      try {
        this.adminPort = await admin.listen();
        this.#admin = admin;
        this.#writeProxyInfo();
      } catch (error) {
        const err = error as NodeJS.ErrnoException;
        const message = `cannot listen on ${this.config.admin.listen_host}:${this.config.admin.listen_port} (admin): ${err.message}`;
        this.#log.error(
          { code: 'SLUICE_LISTEN_FAILED', cause: err.code, reason: message },
          `Failed to start: ${message}`,
        );
        this.#cleanup();
        return { exitCode: 1, reason: 'listen_failed', error: new ListenError(err.code ?? 'LISTEN_FAILED', message) };
      }
    }
    await this.#runHook('onStart');
    this.#lifecycle.start();
    await toPromise(this.#lifecycle);
    return this.#teardown(this.#lifecycle.getSnapshot().context);
  }

  /** Observes only: the history, the drain's duration, the /events stream and the transition's log line. */
  #onTransition(record: TransitionRecord): void {
    this.history.push(record);
    if (record.to === 'draining') this.#drainStartedAt = record.at;
    if (record.to === 'stopped' && this.#drainStartedAt !== undefined)
      this.drainDurationSeconds = (record.at - this.#drainStartedAt) / 1000;
    this.events.emit('transition', record);
    // The line for `stopped` is written by the teardown, once it is true.
    if (record.to === 'stopped') return;
    const message =
      record.event === 'RELOAD'
        ? 'Configuration reloaded'
        : (transitionMessages[record.to] ?? `lifecycle: ${record.to}`);
    this.#log.info(
      { from: record.from, to: record.to, event: record.event, backends: allBackends(this.config).length },
      message,
    );
  }

  /** The PID file names this process: it is removed at teardown, or at exit if teardown never comes. */
  #ownPidFile(file: string): void {
    this.#pidFileTaken = true;
    // Last resort: even a crash of the main thread must not leave our PID behind.
    const release = () => releasePidFile(file);
    process.once('exit', release);
    this.#cleanups.push(() => process.off('exit', release));
  }

  /** A hot restart's successor, now healthy: the PID file names it from now on (it then writes its proxy info). */
  #handOverPidFile(): void {
    if (!this.#inherited || this.#pidFileTaken) return;
    const predecessor = this.#inherited.predecessorPid;
    const file = this.config.proxy.pid_file;
    if (!file) return;
    try {
      takeOverPidFile(file, predecessor);
      this.#ownPidFile(file);
      this.#log.info(
        { event: 'pid_file.taken_over', pid_file: file, predecessor_pid: predecessor },
        'PID file taken over',
      );
    } catch (error) {
      this.#log.error(
        { code: (error as SluiceError).code, pid_file: file },
        `PID file not taken over: ${(error as Error).message}`,
      );
    }
  }

  /** Where this proxy can be reached, beside the PID file: for the commands (status, stop, reload, restart). */
  #writeProxyInfo(): void {
    const file = this.config.proxy.pid_file;
    if (!file || !this.#pidFileTaken) return;
    const proxy = this.config.proxy;
    const probe = probeAddress(this.config, this.#runtime.ports);
    const base = localUrl(probe.host, probe.port, probe.scheme);
    const admin = this.config.admin;
    const info: ProxyInfo = {
      pid: process.pid,
      config: this.#configFile,
      health_url: proxy.health_path === null ? null : `${base}${proxy.health_path}`,
      ready_url: proxy.ready_path === null ? null : `${base}${proxy.ready_path}`,
      admin_url: admin ? localUrl(admin.listen_host, this.adminPort ?? admin.listen_port) : null,
    };
    try {
      writeProxyInfo(file, info);
    } catch (error) {
      this.#log.error(
        { code: (error as NodeJS.ErrnoException).code, file: proxyInfoFile(file) },
        `cannot write ${proxyInfoFile(file)}: ${(error as Error).message}`,
      );
    }
  }

  /** A hook that throws or hangs is logged and never blocks the lifecycle. */
  async #runHook(name: keyof SupervisorHooks): Promise<void> {
    const hook = this.#hooks[name];
    if (!hook) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`did not finish within ${HOOK_TIMEOUT_MS} ms`)), HOOK_TIMEOUT_MS);
      });
      await Promise.race([Promise.resolve().then(hook), timeout]);
    } catch (error) {
      this.#log.error(
        { code: 'SLUICE_HOOK_FAILED', hook: name, err: error },
        `${name} hook failed: ${errorMessage(error)}`,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  #runOnStop(): Promise<void> {
    if (this.#onStopCalled) return Promise.resolve();
    this.#onStopCalled = true;
    return this.#runHook('onStop');
  }

  async #teardown(context: LifecycleContext): Promise<StopOutcome> {
    const exitCode = exitCodeOf(context);
    let failure: ExplainedFailure | null = context.failure;
    if (failure && context.stopReason === 'startup_timeout' && context.requireHealthyBackends) {
      failure = await this.#explainStartupTimeout(failure);
    }
    if (failure && context.stopReason !== 'worker_failed') {
      const name = failure.code === 'SLUICE_STARTUP_TIMEOUT' ? 'StartupTimeout' : (failure.cause ?? failure.code);
      const backends = failure.backends && { backends: failure.backends };
      const cause = failure.cause && { cause: failure.cause };
      const line = { code: failure.code, ...cause, reason: failure.message, ...backends };
      this.#log.error(line, `Failed to start: ${name} (${failure.message})`);
    }
    const stillOpen = this.#runtime.activeConnections();
    let forceClosed = 0;
    if (stillOpen > 0 || context.stopReason === 'drain_timeout' || context.stopReason === 'second_signal') {
      forceClosed = await this.#runtime.forceCloseConnections();
      if (context.stopReason === 'drain_timeout') {
        this.#log.warn({ force_closed: forceClosed }, 'Timeout waiting for connections to drain');
      } else if (forceClosed > 0) {
        this.#log.warn({ force_closed: forceClosed, reason: context.stopReason }, 'Closed remaining connections');
      }
    }
    await this.#runtime.stopAll();
    await this.#runOnStop();
    this.#cleanup();
    const last = this.history.at(-1);
    await this.#admin?.close();
    this.#log.info(
      {
        from: last?.from,
        to: 'stopped',
        event: last?.event,
        reason: context.stopReason,
        exit_code: exitCode,
        force_closed: forceClosed,
      },
      'Shutdown complete',
    );
    return { exitCode, reason: context.stopReason ?? 'drained', error: errorOf(context.stopReason, failure) };
  }

  /**
   * A startup timeout names every backend with its latest probe result, as
   * the health checker saw it (asked now, before the threads stop): one line
   * each, and all of them in the failure's message, which stderr shows.
   */
  async #explainStartupTimeout(failure: Failure): Promise<ExplainedFailure> {
    const probes = await this.#runtime.lastProbes();
    if (!probes || probes.length === 0) return failure;
    const backends = probes.map((probe) => ({
      backend: probe.backend,
      upstream: probe.upstream,
      reason: probe.reason === null ? 'no probe finished yet' : `${probe.reason}${probe.passed ? ', passing' : ''}`,
    }));
    for (const { backend, upstream, reason } of backends) {
      this.#log.warn(
        { event: 'backend.last_probe', backend, upstream, reason },
        `backend ${backend}: last probe ${reason}`,
      );
    }
    const reasons = backends.map(({ backend, reason }) => `${backend}: ${reason}`).join(', ');
    return { ...failure, message: `${failure.message} (${reasons})`, backends };
  }

  #cleanup(): void {
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
    if (this.#pidFileTaken && this.config.proxy.pid_file) releasePidFile(this.config.proxy.pid_file);
  }
}

/** A failure with what the supervisor found out about it: the backends behind a startup timeout. */
type ExplainedFailure = Failure & { backends?: { backend: string; upstream: string; reason: string }[] };

/** The typed error behind a failed run, for embedding programs. */
function errorOf(stopReason: StopReason | null, failure: Failure | null): SluiceError | undefined {
  if (!failure) return undefined;
  switch (stopReason) {
    case 'startup_timeout':
      return new StartupTimeout(failure.message);
    case 'listen_failed':
      return new ListenError(failure.cause ?? failure.code, failure.message);
    default:
      return new WorkerFailedError(failure.message);
  }
}
