/**
 * The one protocol module: every message that crosses a thread boundary is
 * declared here and imported by both sides. Payloads are plain data, because
 * comlink's structured clone drops classes, `code` and `cause`: failures are
 * sent as `{ code, message }`, never thrown across threads.
 */
import type { Config } from './config/schema.ts';
import type { LogOptions } from './log.ts';

export type ActorKind = 'listener' | 'pool' | 'health-checker';

export interface BackendSpec {
  address: string;
  port: number;
  weight: number;
}

/** `address:port`, the identity of a backend everywhere. */
export type BackendId = string;

export const backendId = (b: Pick<BackendSpec, 'address' | 'port'>): BackendId =>
  b.address.includes(':') ? `[${b.address}]:${b.port}` : `${b.address}:${b.port}`;

export interface BackendState extends BackendSpec {
  id: BackendId;
  healthy: boolean;
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
  state: 'starting' | 'healthy' | 'draining' | 'stopped';
  poolHealthy: boolean;
}

export interface Failure {
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

export interface ListenerInit extends ActorInit {
  id: number;
  /** The port to bind: the config's, or, after the first listener bound port 0, the one it got. */
  port: number;
  /** Int32Array view over it: [0] live client connections across all listener threads. */
  connectionCounter: SharedArrayBuffer;
}

export type BindResult = { ok: true; port: number } | { ok: false; failure: Failure };

export type ListenerEvent =
  /** Sent once after CLOSE_LISTENING when this thread has no client connection left. */
  | { type: 'listener.drained'; id: number };

export interface ListenerApi {
  start(init: ListenerInit, onEvent: (event: ListenerEvent) => void): Promise<BindResult>;
  applySnapshot(snapshot: PoolSnapshot): void;
  setStatus(status: ListenerStatus): void;
  /** Draining starts: every response from now on carries `Connection: close`. */
  beginDrain(): void;
  /** Stop accepting, close idle keep-alive connections, report drained when the last one ends. */
  closeListening(): void;
  /** Destroy every remaining client connection; returns how many there were. */
  forceClose(): number;
  /** Flush logs; the thread is terminated after this resolves. */
  stop(): Promise<void>;
}

// ---- pool actor -------------------------------------------------------------

export type PoolEvent = { type: 'pool.published'; snapshot: PoolSnapshot };

export interface PoolApi {
  start(init: ActorInit, onEvent: (event: PoolEvent) => void): Promise<void>;
  applyHealth(observation: HealthObservation): void;
  snapshot(): PoolSnapshot;
  stop(): Promise<void>;
}

// ---- health-checker actor ---------------------------------------------------

export type HealthEvent = { type: 'health.changed'; observation: HealthObservation; from: boolean };

export interface HealthCheckerApi {
  start(init: ActorInit, onEvent: (event: HealthEvent) => void): Promise<void>;
  stop(): Promise<void>;
}

export function assertNever(value: never): never {
  throw new Error(`unexpected message: ${JSON.stringify(value)}`);
}
