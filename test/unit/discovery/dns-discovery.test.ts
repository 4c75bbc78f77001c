/**
 * Backends from DNS, below the process: answers from a real dnsmasq on
 * loopback through Node's resolver (A, AAAA, SRV, NXDOMAIN, a timeout), the
 * refresh schedule on a simulated clock (TTL rule, retries, the last good
 * set kept), and the pool's side of a membership change (SRV priorities,
 * removals at once).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SimulatedClock } from 'xstate';
import { configSchema, type Discovery } from '../../../src/config/schema.ts';
import { createLookup, resolveDiscovery, type DnsLookup } from '../../../src/discovery/dns-answers.ts';
import { DnsWatch, nextRefreshMs, type WatchReport } from '../../../src/discovery/dns-watch.ts';
import { BackendPool } from '../../../src/pool/backend-pool.ts';
import type { BackendSpec, DnsStatus } from '../../../src/protocol.ts';
import { dnsmasqAvailable, silentDnsServer, startDnsmasq, type Dnsmasq } from '../../support/dnsmasq.ts';

const available = dnsmasqAvailable();
let dns: Dnsmasq | undefined;
let lookup: DnsLookup;

const HOSTS = [
  '127.0.0.1 api.test',
  '127.0.0.2 api.test',
  '::1 six.test',
  '127.0.0.3 t1.test',
  '127.0.0.4 t2.test',
  '127.0.0.5 t3.test',
].join('\n');

test.before(async () => {
  if (!available) return;
  dns = await startDnsmasq({
    hosts: HOSTS,
    ttl: 3,
    srv: [
      '_http._tcp.jobs.test,t1.test,8081,10,5',
      '_http._tcp.jobs.test,t2.test,8082,10,1',
      '_http._tcp.jobs.test,t3.test,8083,20,1',
    ],
  });
  lookup = createLookup({ servers: [dns.server], timeout_ms: 500 });
});

test.after(async () => {
  await dns?.stop();
});

const discovery = (value: Partial<Discovery> & { dns: string }): Discovery => ({
  type: 'A',
  port: 9000,
  refresh_ms: 5000,
  ...value,
});
const ids = (backends: BackendSpec[]) =>
  backends.map((b) => `${b.address}:${b.port}/${b.weight}${b.priority === undefined ? '' : `/p${b.priority}`}`);
const dnsTest = (name: string, body: () => Promise<void> | void) =>
  test(name, async () => {
    if (available) await body();
  });

dnsTest('type A: every A and AAAA address on the port, weight 1, with the TTL of the records', async () => {
  const answer = await resolveDiscovery(lookup, 'api', discovery({ dns: 'api.test' }));
  assert.ok(answer.ok, JSON.stringify(answer));
  assert.equal(ids(answer.backends), ['127.0.0.1:9000/1', '127.0.0.2:9000/1']);
  assert.ok(answer.backends.every((b) => b.upstream === 'api' && b.enabled));
  assert.is(answer.ttlMs, 3000);
});

dnsTest('type A: a name with only an AAAA record gives an IPv6 backend', async () => {
  const answer = await resolveDiscovery(lookup, 'six', discovery({ dns: 'six.test' }));
  assert.ok(answer.ok, JSON.stringify(answer));
  assert.equal(ids(answer.backends), ['::1:9000/1']);
});

dnsTest('SRV: targets resolved to addresses, port, weight and priority from each record', async () => {
  const jobs = discovery({ dns: '_http._tcp.jobs.test', type: 'SRV', port: null });
  const answer = await resolveDiscovery(lookup, 'jobs', jobs);
  assert.ok(answer.ok, JSON.stringify(answer));
  assert.equal(ids(answer.backends), ['127.0.0.3:8081/5/p10', '127.0.0.4:8082/1/p10', '127.0.0.5:8083/1/p20']);
  assert.is(answer.ttlMs, 3000, 'the targets\u2019 TTL (Node gives none for SRV)');
});

dnsTest('NXDOMAIN is ENOTFOUND; a server that never answers is ETIMEOUT', async () => {
  const missing = await resolveDiscovery(lookup, 'api', discovery({ dns: 'missing.test' }));
  assert.equal(missing.ok ? 'ok' : missing.code, 'ENOTFOUND');
  const silent = await silentDnsServer();
  try {
    const slow = createLookup({ servers: [silent.server], timeout_ms: 50 });
    const timedOut = await resolveDiscovery(slow, 'api', discovery({ dns: 'api.test' }));
    assert.equal(timedOut.ok ? 'ok' : timedOut.code, 'ETIMEOUT');
  } finally {
    silent.close();
  }
});

test('the refresh delay: refresh_ms, or the TTL when shorter, never under 1 s', () => {
  assert.is(nextRefreshMs(5000, null), 5000);
  assert.is(nextRefreshMs(5000, 3000), 3000);
  assert.is(nextRefreshMs(2000, 30_000), 2000);
  assert.is(nextRefreshMs(5000, 0), 1000);
  assert.is(nextRefreshMs(5000, 200), 1000);
});

/** A watch on a simulated clock; each report is collected, and `next()` waits for the next one. */
function watchOn(clock: SimulatedClock, using: DnsLookup, spec: Discovery) {
  const reports: { report: WatchReport; status: DnsStatus }[] = [];
  let wake: (() => void) | undefined;
  const watch = new DnsWatch(
    'api',
    spec,
    using,
    (report, status) => {
      reports.push({ report, status });
      wake?.();
    },
    clock,
  );
  const next = (advanceMs: number) => {
    const seen = reports.length;
    const arrived = new Promise<void>((resolve) => (wake = () => reports.length > seen && resolve()));
    clock.increment(advanceMs);
    return arrived.then(() => reports.at(-1)!);
  };
  return { watch, reports, next };
}

dnsTest('the watch resolves at the TTL when shorter than refresh_ms, and not before', async () => {
  const clock = new SimulatedClock();
  const { watch, reports, next } = watchOn(clock, lookup, discovery({ dns: 'api.test', refresh_ms: 10_000 }));
  await watch.start();
  assert.is(reports.length, 1);
  assert.equal(reports[0]!.report.type === 'resolved' && reports[0]!.report.delayMs, 3000);
  clock.increment(2999);
  await new Promise((r) => setTimeout(r, 50));
  assert.is(reports.length, 1, 'nothing before the TTL');
  const second = await next(1);
  assert.is(second.report.type, 'resolved');
  watch.stop();
});

dnsTest('NXDOMAIN and a timeout keep the last good set; a warning is due only when the code changes', async () => {
  const clock = new SimulatedClock();
  const silent = await silentDnsServer();
  // One lookup whose servers the test swaps: the good server, then NXDOMAIN for the name, then silence.
  const swapped = createLookup({ servers: [dns!.server], timeout_ms: 50 });
  let target: DnsLookup = swapped;
  const switching: DnsLookup = {
    resolve4: ((...args: Parameters<DnsLookup['resolve4']>) => target.resolve4(...args)) as DnsLookup['resolve4'],
    resolve6: ((...args: Parameters<DnsLookup['resolve6']>) => target.resolve6(...args)) as DnsLookup['resolve6'],
    resolveSrv: (name) => target.resolveSrv(name),
  };
  const { watch, reports, next } = watchOn(clock, switching, discovery({ dns: 'api.test', refresh_ms: 2000 }));
  try {
    await watch.start();
    const good = reports[0]!;
    assert.is(good.report.type, 'resolved');
    assert.equal(good.status.addresses, ['127.0.0.1:9000', '127.0.0.2:9000']);

    await dns!.setHosts(
      HOSTS.split('\n')
        .filter((line) => !line.endsWith(' api.test'))
        .join('\n'),
    );
    const gone = await next(2000);
    const seen = (r: WatchReport) => (r.type === 'failed' ? [r.code, r.changed, r.delayMs] : r.type);
    assert.equal(seen(gone.report), ['ENOTFOUND', true, 2000]);
    assert.equal(gone.status.addresses, ['127.0.0.1:9000', '127.0.0.2:9000'], 'the last good set is kept');
    assert.is(gone.status.last_error?.code, 'ENOTFOUND');
    const again = await next(2000);
    assert.equal(seen(again.report), ['ENOTFOUND', false, 2000], 'the same code again: no new warning');

    target = createLookup({ servers: [silent.server], timeout_ms: 50 });
    const timedOut = await next(2000);
    assert.equal(seen(timedOut.report), ['ETIMEOUT', true, 2000]);
    assert.equal(timedOut.status.addresses, ['127.0.0.1:9000', '127.0.0.2:9000']);

    target = swapped;
    await dns!.setHosts(HOSTS);
    const back = await next(2000);
    assert.equal(back.report.type === 'resolved' && back.report.recoveredFrom, 'ETIMEOUT');
    assert.is(back.status.last_error, null);
  } finally {
    watch.stop();
    silent.close();
    await dns!.setHosts(HOSTS);
  }
});

const srv = (address: string, priority: number, weight = 1): BackendSpec => ({
  upstream: 'jobs',
  address,
  port: 80,
  weight,
  enabled: true,
  priority,
});
const selectable = (pool: BackendPool) =>
  pool
    .snapshot(0)
    .backends.filter((b) => b.selectable)
    .map((b) => b.address)
    .sort();
const healthy = (pool: BackendPool, address: string, up = true) =>
  pool.applyHealth({ backend: `${address}:80`, healthy: up, reason: 'test' }, 0);

test('SRV priority: only the lowest priority with a selectable backend is chosen from', () => {
  const pool = new BackendPool([]);
  pool.replaceDiscovered('jobs', [srv('10.0.0.1', 10), srv('10.0.0.2', 10), srv('10.0.0.3', 20)]);
  for (const address of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) healthy(pool, address);
  assert.equal(selectable(pool), ['10.0.0.1', '10.0.0.2']);
  healthy(pool, '10.0.0.1', false);
  assert.equal(selectable(pool), ['10.0.0.2'], 'one left in priority 10: still only priority 10');
  healthy(pool, '10.0.0.2', false);
  assert.equal(selectable(pool), ['10.0.0.3'], 'none left in 10: priority 20 takes over');
  healthy(pool, '10.0.0.1');
  assert.equal(selectable(pool), ['10.0.0.1'], 'back to 10 as soon as one of it is selectable');
});

test('a changed DNS set: new backends unhealthy, removed ones gone at once, another upstream\u2019s skipped', () => {
  const pool = new BackendPool([{ upstream: 'web', address: '10.0.0.9', port: 80, weight: 1, enabled: true }]);
  const a = (address: string): BackendSpec => ({ upstream: 'api', address, port: 80, weight: 1, enabled: true });
  pool.replaceDiscovered('api', [a('10.0.0.1'), a('10.0.0.2')]);
  for (const address of ['10.0.0.1', '10.0.0.2']) healthy(pool, address);
  const change = pool.replaceDiscovered('api', [a('10.0.0.2'), a('10.0.0.3'), a('10.0.0.9')]);
  assert.equal(
    change.added.map((b) => b.address),
    ['10.0.0.3'],
  );
  assert.equal(change.removed, ['10.0.0.1:80']);
  assert.equal(change.skipped, ['10.0.0.9:80']);
  const api = pool.snapshot(0).backends.filter((b) => b.upstream === 'api');
  const states = api.map((b) => [b.address, b.selectable]);
  assert.equal(
    states,
    [
      ['10.0.0.2', true],
      ['10.0.0.3', false],
    ],
    'no fallback to the removed one',
  );
});

test('config: backends or discovery, A needs a port, refresh_ms >= 1000, servers as address:port', () => {
  const parse = (document: unknown) => configSchema.safeParse(document);
  const paths = (document: unknown) => {
    const result = parse(document);
    return result.success ? [] : result.error.issues.map((i) => i.path.join('.'));
  };
  const api = (value: unknown) => ({ upstreams: { api: value } });
  const both = { discovery: { dns: 'api.test', port: 80 }, backends: [{ address: '10.0.0.1', port: 80 }] };
  assert.equal(paths(api(both)), ['upstreams.api.discovery']);
  assert.equal(paths(api({ discovery: { dns: 'api.test' } })), ['upstreams.api.discovery.port']);
  const srvWithPort = { discovery: { dns: '_x._tcp.api.test', type: 'SRV', port: 80 } };
  assert.equal(paths(api(srvWithPort)), ['upstreams.api.discovery.port']);
  const tooOften = { discovery: { dns: 'api.test', port: 80, refresh_ms: 999 } };
  assert.equal(paths(api(tooOften)), ['upstreams.api.discovery.refresh_ms']);
  assert.equal(paths({ dns: { servers: ['10.96.0.10'] } }), ['dns.servers.0']);
  assert.equal(paths({ dns: { servers: ['dns.example:53'] } }), ['dns.servers.0']);
  assert.equal(paths({ dns: { servers: ['10.96.0.10:53', '[fd00::10]:53'] } }), []);
  const parsed = parse(api({ discovery: { dns: 'api.test', port: 80 } }));
  assert.ok(parsed.success);
  assert.equal(parsed.data.upstreams['api']!.discovery, { dns: 'api.test', type: 'A', port: 80, refresh_ms: 5000 });
  assert.equal(parsed.data.dns, { servers: [], timeout_ms: 2000 });
});

test.run();
