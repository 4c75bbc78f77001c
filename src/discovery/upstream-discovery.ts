/**
 * The pool actor's DNS side: one `DnsWatch` per upstream with `discovery`,
 * and what each answer does to the pool. A changed set goes into the pool as
 * a membership change (new backends unhealthy until checked, removed ones at
 * once) and is published like any other; one log line says what was added
 * and removed. A failure keeps the set, with a warning when its code is new.
 */
import type { Config } from '../config/schema.ts';
import { discoveredGroups, upstreamGroups } from '../config/upstream-groups.ts';
import type { Logger } from '../log.ts';
import type { BackendPool } from '../pool/backend-pool.ts';
import { backendId, type BackendSpec, type DnsStatus, type PoolEvent, type UpstreamTls } from '../protocol.ts';
import { createLookup, type DnsLookup } from './dns-answers.ts';
import { DnsWatch, systemClock, type Clock, type WatchReport } from './dns-watch.ts';

export class UpstreamDiscovery {
  readonly #pool: () => BackendPool;
  readonly #log: Logger;
  readonly #emit: (event: PoolEvent) => void;
  readonly #publish: () => void;
  readonly #clock: Clock;
  readonly #watches = new Map<string, DnsWatch>();
  /** The set in use per upstream: what a reload keeps. */
  readonly #sets = new Map<string, BackendSpec[]>();
  /** Each upstream's `tls`: what the backends DNS gives it are reached with. */
  #tls = new Map<string, UpstreamTls | null>();
  /** Watches made by the last reconfigure, not yet resolving. */
  #unstarted: DnsWatch[] = [];
  #lookup: DnsLookup | undefined;
  #dnsSettings = '';
  #stopped = false;
  /** The addresses last skipped per upstream (they belong to another one), joined. */
  readonly #skipped = new Map<string, string>();

  constructor(
    pool: () => BackendPool,
    log: Logger,
    emit: (event: PoolEvent) => void,
    publish: () => void,
    clock: Clock = systemClock,
  ) {
    this.#pool = pool;
    this.#log = log;
    this.#emit = emit;
    this.#publish = publish;
    this.#clock = clock;
  }

  /**
   * The config's discovery upstreams: watches for new names, none for names
   * gone; a name that stays keeps its watch and its set. A changed `dns`
   * section resolves every name again (the set stays until the answer).
   * `seeded`: what a restarted pool starts from. Returns every set in use.
   */
  reconfigure(config: Config, seeded: readonly BackendSpec[] = []): BackendSpec[] {
    const groups = discoveredGroups(config);
    this.#tls = new Map(upstreamGroups(config).map((group) => [group.name, group.tls]));
    const settings = JSON.stringify(config.dns);
    if (settings !== this.#dnsSettings || !this.#lookup) {
      this.#dnsSettings = settings;
      this.#lookup = createLookup(config.dns);
      for (const watch of this.#watches.values()) watch.stop();
      this.#watches.clear();
    }
    for (const spec of seeded) {
      const upstream = spec.upstream;
      if (upstream === undefined || !groups.has(upstream)) continue;
      this.#sets.set(upstream, [...(this.#sets.get(upstream) ?? []), spec]);
    }
    for (const [name, watch] of this.#watches) {
      if (JSON.stringify(groups.get(name)) === JSON.stringify(watch.discovery)) continue;
      watch.stop();
      this.#watches.delete(name);
    }
    for (const name of [...this.#sets.keys()]) if (!groups.has(name)) this.#sets.delete(name);
    for (const [name, discovery] of groups) {
      if (this.#watches.has(name)) continue;
      const onReport = (report: WatchReport, status: DnsStatus) => this.#onReport(watch, report, status);
      const watch: DnsWatch = new DnsWatch(name, discovery, this.#lookup, onReport, this.#clock, this.#sets.get(name));
      this.#watches.set(name, watch);
      this.#unstarted.push(watch);
    }
    return [...this.#sets.values()].flat();
  }

  /** New watches resolve now (after the pool has taken the sets `reconfigure` returned). */
  start(): void {
    const unstarted = this.#unstarted;
    this.#unstarted = [];
    for (const watch of unstarted) if (this.#watches.get(watch.upstream) === watch) void watch.start();
  }

  stop(): void {
    this.#stopped = true;
    for (const watch of this.#watches.values()) watch.stop();
  }

  #onReport(watch: DnsWatch, report: WatchReport, status: DnsStatus): void {
    if (this.#stopped || this.#watches.get(watch.upstream) !== watch) return;
    const upstream = watch.upstream;
    const name = watch.discovery.dns;
    const result = report.type === 'resolved' ? 'ok' : report.code;
    this.#emit({ type: 'pool.dns', status, result });
    const addresses = status.addresses.length;
    this.#log.debug(
      { event: 'dns.resolved', upstream, dns: name, result, addresses, next_ms: report.delayMs },
      'dns resolved',
    );
    if (report.type === 'failed') {
      if (!report.changed) return;
      const kept = this.#sets.get(upstream)?.length ?? 0;
      this.#log.warn(
        { upstream, dns: name, type: watch.discovery.type, code: report.code, kept, retry_ms: report.delayMs },
        `upstream ${upstream}: resolving ${name} failed (${report.code}); keeping its ${kept} backends`,
      );
      return;
    }
    if (report.recoveredFrom !== null) {
      const fields = { upstream, dns: name, type: watch.discovery.type, from: report.recoveredFrom };
      this.#log.info(fields, `upstream ${upstream}: ${name} resolves again`);
    }
    const tls = this.#tls.get(upstream) ?? null;
    this.#apply(upstream, name, tls ? report.backends.map((backend) => ({ ...backend, tls })) : report.backends);
  }

  #apply(upstream: string, name: string, backends: BackendSpec[]): void {
    const result = this.#pool().replaceDiscovered(upstream, backends);
    const { added, removed, changed } = result;
    let { skipped } = result;
    const skippedIds = new Set(skipped);
    this.#sets.set(
      upstream,
      backends.filter((b) => !skippedIds.has(backendId(b))),
    );
    // Warned when it starts or changes, not on every refresh.
    const skippedKey = skipped.join(' ');
    if (skippedKey !== (this.#skipped.get(upstream) ?? '')) this.#skipped.set(upstream, skippedKey);
    else skipped = [];
    if (skipped.length > 0) {
      const message = `upstream ${upstream}: ${skipped.length} addresses of ${name} belong to another upstream`;
      this.#log.warn({ upstream, dns: name, skipped }, message);
    }
    if (added.length > 0 || removed.length > 0) {
      const message = `upstream ${upstream}: ${name} changed (+${added.length} −${removed.length})`;
      this.#log.info({ upstream, dns: name, added: added.map(backendId), removed }, message);
      this.#emit({ type: 'pool.membership', added, removed });
    }
    if (changed) this.#publish();
  }
}
