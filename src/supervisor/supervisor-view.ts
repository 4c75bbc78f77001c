/**
 * What the admin listener and the metrics read of a running proxy: a narrow,
 * read-only view of the supervisor. They depend on this interface, never on
 * `Supervisor` itself, so the layers stay a line (see docs/architecture.md):
 * entry points → supervisor → links → threads, and admin → this view.
 */
import type { EventEmitter } from 'node:events';
import type { Config } from '../config/schema.ts';
import type { TransitionRecord } from '../machines/history.ts';
import type { ActorKind, BackendId, CertificateInfo, HealthEvent, LifecycleState } from '../protocol.ts';
import type { RestartEvent } from './thread-supervisor.ts';

export type { RestartEvent } from './thread-supervisor.ts';

export interface SupervisorEvents {
  transition: [TransitionRecord];
  health: [HealthEvent];
  restart: [RestartEvent];
}

/** The last hot restart's outcome, in the admin /status document. */
export interface RestartOutcome {
  at: string;
  ok: boolean;
  /** The successor's PID, once it is healthy. */
  pid?: number;
  error?: string;
}

/** The last reload's outcome, in the admin /status document. */
export interface ReloadOutcome {
  at: string;
  ok: boolean;
  error?: string;
  needs_restart?: string[];
}

/** A backend of the latest snapshot, with its in-flight requests over all listener threads. */
export interface BackendRow {
  upstream: string;
  address: string;
  port: number;
  weight: number;
  healthy: boolean;
  enabled: boolean;
  ejected: boolean;
  in_flight: number;
}

/** One upstream in `/status`: where its backends come from and, for DNS, the last answer. */
export interface UpstreamStatus {
  name: string;
  source: 'static' | 'dns';
  dns: string | null;
  type: 'A' | 'SRV' | null;
  resolved_at: string | null;
  last_error: { code: string; message: string; at: string } | null;
  addresses: BackendId[];
}

/** An actor thread: kind, id, whether it runs, and how often it was restarted. */
export interface WorkerRow {
  id: number;
  kind: ActorKind;
  alive: boolean;
  restarts: number;
}

export interface SupervisorView {
  /** The configuration the proxy runs (the admin server opens the cache's store from it). */
  readonly config: Config;
  readonly state: LifecycleState;
  readonly startedAt: Date;
  /** The port the first listener serves, once bound. */
  readonly port: number | undefined;
  /** Each listener's address and whether it speaks TLS, with its bound port once known. */
  listeners(): { host: string; port: number; tls: boolean }[];
  /** The certificates every TLS listener serves. */
  certificates(): CertificateInfo[];
  readonly history: readonly TransitionRecord[];
  /** Transitions, health flips and restarts as they happen (the admin /events stream listens here). */
  readonly events: Pick<EventEmitter<SupervisorEvents>, 'on' | 'off'>;
  readonly lastReload: ReloadOutcome | undefined;
  readonly lastRestart: RestartOutcome | undefined;
  /** How long the drain took, once it is over. */
  readonly drainDurationSeconds: number | undefined;
  activeConnections(): number;
  rejectedConnections(): number;
  backends(): BackendRow[];
  upstreams(): UpstreamStatus[];
  workers(): WorkerRow[];
  /** DNS resolution attempts per upstream and result, since start. */
  dnsResolutions(): { upstream: string; result: string; count: number }[];
  /** Every thread's prom-client registry as JSON (threads that cannot answer are left out). */
  threadMetrics(): Promise<object[][]>;
}

/** The admin listener as the supervisor starts and stops it; the entry points create it over the view. */
export interface AdminListener {
  /** Resolves with the bound port; rejects with the system's error (`EADDRINUSE`…). */
  listen(): Promise<number>;
  close(): Promise<void>;
}
