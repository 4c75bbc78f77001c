/**
 * Keeps one upstream's DNS answer fresh: resolves at once, then again after
 * `refresh_ms`, or the answer's TTL when that is shorter, never sooner than
 * 1 s. A failed or empty answer keeps the last good set and is retried after
 * `refresh_ms`. Attempts never overlap: the next is scheduled when one ends.
 *
 * Time comes from a `Clock` (xstate's SimulatedClock fits it), so the
 * schedule is tested without waiting.
 */
import { MIN_DNS_REFRESH_MS } from '../config/limits.ts';
import type { Discovery } from '../config/schema.ts';
import { backendId, type BackendSpec, type DnsStatus } from '../protocol.ts';
import { resolveDiscovery, type DnsLookup } from './dns-answers.ts';
import type { Clock } from '../clock.ts';

export type { Clock };

export const systemClock: Clock = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (id) => clearTimeout(id as NodeJS.Timeout),
  now: () => Date.now(),
};

/** The delay before the next resolution after a good answer. */
export const nextRefreshMs = (refreshMs: number, ttlMs: number | null): number =>
  Math.max(MIN_DNS_REFRESH_MS, ttlMs === null ? refreshMs : Math.min(refreshMs, ttlMs));

export type WatchReport =
  /** A good answer; `backends` is the whole set (it may be the same as before). */
  | { type: 'resolved'; backends: BackendSpec[]; delayMs: number; recoveredFrom: string | null }
  /** `changed`: first failure, or a different code than the last one: what is worth a warning. */
  | { type: 'failed'; code: string; message: string; changed: boolean; delayMs: number };

export class DnsWatch {
  readonly upstream: string;
  readonly discovery: Discovery;
  readonly #lookup: DnsLookup;
  readonly #clock: Clock;
  readonly #report: (report: WatchReport, status: DnsStatus) => void;
  #timer: unknown;
  #stopped = false;
  #resolvedAt: number | null = null;
  #lastError: DnsStatus['last_error'] = null;
  #addresses: string[];

  /** `known`: the set in use already (a restarted pool, a reload that kept the name). */
  constructor(
    upstream: string,
    discovery: Discovery,
    lookup: DnsLookup,
    report: (report: WatchReport, status: DnsStatus) => void,
    clock: Clock = systemClock,
    known: readonly BackendSpec[] = [],
  ) {
    this.upstream = upstream;
    this.discovery = discovery;
    this.#lookup = lookup;
    this.#report = report;
    this.#clock = clock;
    this.#addresses = known.map(backendId);
  }

  get status(): DnsStatus {
    return {
      upstream: this.upstream,
      name: this.discovery.dns,
      type: this.discovery.type,
      resolved_at: this.#resolvedAt,
      last_error: this.#lastError,
      addresses: [...this.#addresses],
    };
  }

  /** Resolves now; the returned promise ends with this first attempt (tests wait for it). */
  start(): Promise<void> {
    return this.#attempt();
  }

  stop(): void {
    this.#stopped = true;
    this.#clock.clearTimeout(this.#timer);
  }

  async #attempt(): Promise<void> {
    const answer = await resolveDiscovery(this.#lookup, this.upstream, this.discovery);
    if (this.#stopped) return;
    const refreshMs = this.discovery.refresh_ms;
    let report: WatchReport;
    if (answer.ok) {
      const recoveredFrom = this.#lastError?.code ?? null;
      this.#lastError = null;
      this.#resolvedAt = this.#clock.now();
      this.#addresses = answer.backends.map(backendId);
      const delayMs = nextRefreshMs(refreshMs, answer.ttlMs);
      report = { type: 'resolved', backends: answer.backends, delayMs, recoveredFrom };
    } else {
      const changed = this.#lastError?.code !== answer.code;
      this.#lastError = { code: answer.code, message: answer.message, at: this.#clock.now() };
      const delayMs = Math.max(MIN_DNS_REFRESH_MS, refreshMs);
      report = { type: 'failed', code: answer.code, message: answer.message, changed, delayMs };
    }
    this.#timer = this.#clock.setTimeout(() => void this.#attempt(), report.delayMs);
    this.#report(report, this.status);
  }
}
