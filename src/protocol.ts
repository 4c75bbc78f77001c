/**
 * The one protocol module: every message that crosses a thread boundary is
 * declared here and imported by both sides. Payloads are plain data, because
 * comlink's structured clone drops classes, `code` and `cause`: failures are
 * sent as `{ code, message }`, never thrown across threads.
 */
import type { Config } from './config/schema.ts';
import type { ErrorCode } from './errors.ts';
import type { LogOptions } from './log.ts';

/** Every kind of actor thread: the supervisor spawns them, the metrics label restarts with them. */
export const actorKinds = ['listener', 'pool', 'health-checker'] as const;
export type ActorKind = (typeof actorKinds)[number];

/**
 * The lifecycle machine's top-level states, in order: what the listeners
 * answer /health with, the metrics' `state` label, the admin's `state`.
 * A test checks that the machine has exactly these.
 */
export const lifecycleStates = ['starting', 'healthy', 'draining', 'stopped'] as const;
export type LifecycleState = (typeof lifecycleStates)[number];

/** The upstream of top-level `backends`, and of requests when there are no routes. */
export const DEFAULT_UPSTREAM = 'default';

/** How sluice speaks TLS to a backend (its own `tls`, else its upstream group's). */
export interface UpstreamTls {
  /** Sent as SNI and checked against the certificate; null: the backend's address. */
  servername: string | null;
  /** The CA bundle (PEM file, absolute path) that signs the backend's certificate; null: Node's roots. */
  ca: string | null;
  /** false: any certificate is taken (the connection is still encrypted). */
  verify: boolean;
}

export interface BackendSpec {
  /** The upstream group it belongs to (absent: `default`). */
  upstream?: string;
  /** TLS to this backend; absent or null: plain TCP. */
  tls?: UpstreamTls | null;
  address: string;
  port: number;
  weight: number;
  /** `false`: kept and probed, never chosen. */
  enabled: boolean;
  /**
   * From an SRV record: only the lowest priority of its upstream is chosen
   * while any backend of it is selectable. Absent: no priority (static).
   */
  priority?: number;
}

/** `address:port`, the identity of a backend everywhere. */
export type BackendId = string;

export const backendId = (b: Pick<BackendSpec, 'address' | 'port'>): BackendId =>
  b.address.includes(':') ? `[${b.address}]:${b.port}` : `${b.address}:${b.port}`;

export interface BackendState extends BackendSpec {
  upstream: string;
  id: BackendId;
  /** What the active health checks say. */
  healthy: boolean;
  /** Ejected by passive health (failures seen on live traffic) until the ejection ends. */
  ejected: boolean;
  /** enabled, healthy and not ejected: the balancers may choose it. */
  selectable: boolean;
  /** Its index in the shared in-flight counters (least_connections, random). */
  slot: number;
  /** Removed by a reload; selectable only while no backend of the new set is (make before break). */
  retiring?: true;
}

/** What the pool actor publishes to every listener whenever the set changes. */
export interface PoolSnapshot {
  version: number;
  backends: BackendState[];
}

export interface HealthObservation {
  backend: BackendId;
  healthy: boolean;
  /** `status 200`, `status 503`, `timeout`, `ECONNREFUSED`… */
  reason: string;
}

/** What a listener needs to answer /health and /ready without asking anyone. */
export interface ListenerStatus {
  state: LifecycleState;
  poolHealthy: boolean;
}

/** A failure as sluice reports it: its own code, and the system's (`EADDRINUSE`…) as `cause`. */
export interface Failure {
  code: ErrorCode;
  message: string;
  cause?: string;
}

/** What a thread saw fail, with the system's code (`EADDRINUSE`, `ERR_MODULE_NOT_FOUND`): a Failure's `cause`. */
export interface SystemFailure {
  code: string;
  message: string;
}

/** What every actor thread is started with. */
export interface ActorInit {
  config: Config;
  /** Resolved by the supervisor (a TTY decides `pretty`, and only the main thread can see it). */
  log: LogOptions;
}

// ---- listener actor ---------------------------------------------------------

/** A certificate chain and its key as PEM text, and the files they were read from. */
export interface PemPair {
  cert_file: string;
  key_file: string;
  cert: string;
  key: string;
}

/** What `/status` and the metrics say of one certificate. */
export interface CertificateInfo {
  /** The certificate's file: the `name` label of its metric. */
  name: string;
  /** The listener's configured address, `host:port`. */
  listener: string;
  subject: string;
  /** `DNS:api.example.com`, `IP Address:127.0.0.1`… */
  sans: string[];
  /** Its expiry, ISO 8601. */
  not_after: string;
}

/** A TLS listener's certificates, read and checked by the main thread. */
export interface ListenerTls {
  default: PemPair;
  sni: { server_names: string[]; pair: PemPair }[];
  min_version: 'TLSv1.2' | 'TLSv1.3';
  session_tickets: boolean;
  certificates: CertificateInfo[];
}

/**
 * The session-ticket keys every TLS listener of every thread uses, made by
 * the supervisor and handed to a hot restart's successor: a client resumes
 * on whichever thread or process accepts it. Each key is 48 bytes in the
 * layout of Node's `ticketKeys`: 16 bytes of name, 16 of HMAC secret, 16
 * of AES key.
 */
export interface TicketKeys {
  /** Encrypts the tickets issued now, and decrypts them. */
  current: Uint8Array;
  /** The key before the last rotation: decrypts only (the ticket is then renewed); null after the first start. */
  previous: Uint8Array | null;
}

/** The result of applying new certificates in a listener thread. */
export type TlsApplied = { ok: true } | { ok: false; failure: Failure };

export interface ListenerInit extends ActorInit {
  id: number;
  /** The port of each listener (listenSpecs order): the config's, or, after the first thread bound port 0, the one it got. */
  ports: number[];
  /** Each listener's certificates (null: plain), as the main thread read them. */
  tls: (ListenerTls | null)[];
  /** The session-ticket keys of every TLS listener (rotated later with `setTicketKeys`). */
  ticketKeys: TicketKeys;
  /** Int32Array view over it: [0] live client connections across all listener threads. */
  connectionCounter: SharedArrayBuffer;
  /** Int32Array view over it: in-flight requests per backend slot, across all listener threads. */
  inFlight: SharedArrayBuffer;
  /** The pool's latest snapshot, if it has published one: applied before the socket is bound. */
  snapshot?: PoolSnapshot;
  status: ListenerStatus;
  /**
   * Set in a hot restart's successor, per listener: the listening sockets
   * inherited from the process it replaces, served instead of binding the
   * port (empty: bind it), either only once the lifecycle is healthy; null:
   * a listener the predecessor did not have, bound at once.
   */
  inheritedFds?: (number[] | null)[];
}

export type BindResult = { ok: true; ports: number[] } | { ok: false; failure: SystemFailure };

/**
 * A listener's start: bound (or refused the port, as BindResult), or could
 * not set itself up before binding (`setup`: its request hooks would not load).
 */
export type ListenerStartResult = BindResult | { ok: false; setup: SystemFailure };

/** What a listener saw of one backend on live traffic, for passive health. */
export type PassiveReport =
  /** A connect error, reset or timeout. */
  | { type: 'failure'; backend: BackendId; code: string }
  /** A success after this listener had reported failures for that backend. */
  | { type: 'recovered'; backend: BackendId };

export type ListenerEvent =
  /** Sent once after CLOSE_LISTENING when this thread has no client connection left. */
  { type: 'listener.drained'; id: number } | { type: 'listener.passive'; id: number; report: PassiveReport };

export interface ListenerApi {
  start(init: ListenerInit, onEvent: (event: ListenerEvent) => void): Promise<ListenerStartResult>;
  /** Returns the version applied, so the supervisor knows every listener has it. */
  applySnapshot(snapshot: PoolSnapshot): number;
  /**
   * The one phase message: the lifecycle state and the pool's health. From
   * `draining` on, every response carries `Connection: close`; a successor
   * starts accepting on its inherited sockets at `healthy`.
   */
  setStatus(status: ListenerStatus): void;
  /** Stop accepting, close idle keep-alive connections, report drained when the last one ends. */
  closeListening(): void;
  /** Destroy every remaining client connection; returns how many there were. */
  forceClose(): number;
  /** Its prom-client registry as JSON, for the supervisor to aggregate. */
  metrics(): Promise<object[]>;
  /** Reopen the log file (logrotate moved it: SIGUSR1). */
  reopenLog(): void;
  /** Answers at once; the supervisor's heartbeat. */
  heartbeat(): number;
  /** A reload: balancing, timeouts, limits, endpoint paths and certificates of the new config. */
  reconfigure(config: Config, tls: (ListenerTls | null)[]): TlsApplied;
  /** The descriptors of its listening sockets per listener, for a hot restart's successor to inherit. */
  listeningFds(): number[][];
  /** The keys rotated (every 12 hours): new tickets use the new current key. */
  setTicketKeys(keys: TicketKeys): void;
  /** Flush logs; the thread is terminated after this resolves. */
  stop(): Promise<void>;
}

// ---- pool actor -------------------------------------------------------------

/** What a restarted pool starts from: the health known so far, and versions that keep counting up. */
export interface PoolSeed {
  health: HealthObservation[];
  version: number;
  /** The backends DNS gave last, so that a restarted pool keeps them until its own first answer. */
  discovered?: BackendSpec[];
}

/** What `/status` shows of an upstream whose backends come from DNS. */
export interface DnsStatus {
  upstream: string;
  name: string;
  type: 'A' | 'SRV';
  /** When the last answer with addresses came (ms since the epoch); null: never. */
  resolved_at: number | null;
  /** The last attempt's failure, null once an attempt succeeds. */
  last_error: { code: string; message: string; at: number } | null;
  /** The set in use: `address:port`. */
  addresses: BackendId[];
}

export type PoolEvent =
  | { type: 'pool.published'; snapshot: PoolSnapshot }
  /** DNS changed an upstream's set: the health checker probes the new backends and forgets the removed. */
  | { type: 'pool.membership'; added: BackendSpec[]; removed: BackendId[] }
  /** One resolution attempt ended; `result` is `ok` or Node's error code (`ENOTFOUND`, `ETIMEOUT`…). */
  | { type: 'pool.dns'; status: DnsStatus; result: string }
  /** Passive health ejected a backend: the health checker must see it as unhealthy again. */
  | { type: 'pool.ejected'; backend: BackendId; until: number };

export interface PoolApi {
  /**
   * Returns the first snapshot, so that the supervisor holds one as soon as
   * the pool is up. `health`: what is known already (a restarted pool).
   */
  start(init: ActorInit, onEvent: (event: PoolEvent) => void, seed?: PoolSeed): Promise<PoolSnapshot>;
  applyHealth(observation: HealthObservation): void;
  reportPassive(report: PassiveReport): void;
  /** False when it was already there. */
  addBackend(spec: BackendSpec): boolean;
  /** False when it was not there. */
  removeBackend(backend: BackendId): boolean;
  /** A reload: the backend set and the passive-health policy of the new config. */
  reconfigure(config: Config): void;
  /** Answers at once; the supervisor's heartbeat. */
  heartbeat(): number;
  reopenLog(): void;
  snapshot(): PoolSnapshot;
  stop(): Promise<void>;
}

// ---- health-checker actor ---------------------------------------------------

/** A backend's latest active probe, as the health checker saw it. */
export interface ProbeReport {
  backend: BackendId;
  upstream: string;
  passed: boolean;
  /** `status 404`, `ECONNREFUSED`, `ENOTFOUND`, `timeout`…; null before its first probe finished. */
  reason: string | null;
}

export interface HealthEvent {
  type: 'health.changed';
  observation: HealthObservation;
  from: boolean;
}

export interface HealthCheckerApi {
  /**
   * `healthy`: backends known healthy already (a restarted checker starts from them);
   * `discovered`: backends DNS gave, which the config does not list.
   */
  start(
    init: ActorInit,
    onEvent: (event: HealthEvent) => void,
    healthy?: BackendId[],
    discovered?: BackendSpec[],
  ): Promise<void>;
  heartbeat(): number;
  /** Passive health ejected it: count it unhealthy, so it needs `healthy_threshold` passes again. */
  markUnhealthy(backend: BackendId): void;
  addBackend(spec: BackendSpec): void;
  removeBackend(backend: BackendId): void;
  /** A reload: probe settings and backends of the new config (tallies of kept backends stay). */
  reconfigure(config: Config): void;
  metrics(): Promise<object[]>;
  /** Every backend's latest probe result (a startup timeout reports them). */
  lastProbes(): ProbeReport[];
  reopenLog(): void;
  stop(): Promise<void>;
}

export function assertNever(value: never): never {
  throw new Error(`unexpected message: ${JSON.stringify(value)}`);
}
