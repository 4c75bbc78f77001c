/**
 * Backends from DNS, end to end: sluice as a process, a real dnsmasq on
 * loopback, test upstreams on 127.0.0.x sharing one port as the addresses of
 * one name do. Changing the hosts file (and SIGHUP to dnsmasq) is how a
 * headless Service's answer changes when pods come and go.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { freePort, get, tryConnect, until } from '../support/http.ts';
import { startLoad } from '../support/load.ts';
import { exitWithin, killAll, startSluice, transitionTo } from '../support/sluice-process.ts';
import type { LogLine, SluiceProcess } from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { testConfig, writeConfig } from '../support/config-file.ts';
import { dnsmasqAvailable, startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';

const available = dnsmasqAvailable();
const upstreams: TestUpstream[] = [];
const servers: Dnsmasq[] = [];

test.after(async () => {
  killAll();
  await Promise.all([...upstreams.map((u) => u.close()), ...servers.map((s) => s.stop())]);
});

/** Upstreams named u1, u2… on 127.0.0.1, .2… (from `from` on), all on one port. */
async function addresses(count: number, from = 1, port?: number): Promise<{ port: number; list: TestUpstream[] }> {
  const shared = port ?? (await freePort());
  const list: TestUpstream[] = [];
  for (let i = from; i < from + count; i++) {
    const u = await startUpstream(`u${i}`, shared, `127.0.0.${i}`);
    upstreams.push(u);
    list.push(u);
  }
  return { port: shared, list };
}

const hostsFor = (...octets: number[]) => octets.map((n) => `127.0.0.${n} api.test`).join('\n');

async function dnsServer(hosts: string, srv: string[] = []): Promise<Dnsmasq> {
  const server = await startDnsmasq({ hosts, ttl: 1, srv });
  servers.push(server);
  return server;
}

/** sluice with the default upstream from `api.test` on `port`, refreshed every second. */
type Fields = Record<string, unknown>;

function sluiceFor(dns: Dnsmasq, port: number, proxy: Fields = {}, extra: Fields = {}): SluiceProcess {
  return startSluice(['-c', writeConfig(configFor(dns, port, proxy, extra)), '--log-level', 'debug']);
}

function configFor(dns: Dnsmasq, port: number, proxy: Fields = {}, extra: Fields = {}) {
  return {
    ...testConfig([], { workers: 2, ...proxy }),
    upstreams: { default: { discovery: { dns: 'api.test', port, refresh_ms: 1000 } } },
    dns: { servers: [dns.server], timeout_ms: 500 },
    ...extra,
  };
}

const setChange = (l: LogLine) =>
  l['upstream'] === 'default' && Array.isArray(l['added']) && Array.isArray(l['removed']);

/** Each listener thread routes to exactly `selectable` of `total` backends, from log line `from` on. */
async function routing(proc: SluiceProcess, total: number, selectable: number, from: number, listeners = 2) {
  for (let listener = 0; listener < listeners; listener++) {
    const applied = (l: LogLine) =>
      l['event'] === 'snapshot.applied' &&
      l['listener'] === listener &&
      l['total'] === total &&
      l['selectable'] === selectable;
    await proc.waitForLog(applied, 10_000, from);
  }
}

const dnsTest = (name: string, body: () => Promise<void>) =>
  test(name, async () => {
    if (available) await body();
  });

dnsTest('a refresh adds and removes addresses; one log line per change; /status and /metrics show it', async () => {
  const { port, list } = await addresses(3);
  const dns = await dnsServer(hostsFor(1));
  const proc = sluiceFor(dns, port, {}, { admin: { listen_port: 0 } });
  try {
    const proxyPort = await proc.port();
    const adminPort = (await proc.waitForLog((l) => l['event'] === 'admin.listening'))['port'] as number;
    const first = await proc.waitForLog(setChange);
    assert.equal([first['added'], first['removed']], [[`127.0.0.1:${port}`], []]);
    await proc.waitForLog(transitionTo('healthy'));
    await routing(proc, 1, 1, 0);
    assert.is((await get(proxyPort, '/x')).body, 'u1\n');

    const mark = proc.lines.length;
    await dns.setHosts(hostsFor(2, 3));
    const change = await proc.waitForLog(setChange, 10_000, mark);
    const expected = [[`127.0.0.2:${port}`, `127.0.0.3:${port}`], [`127.0.0.1:${port}`]];
    assert.equal([change['added'], change['removed']], expected);
    assert.is(proc.lines.slice(mark).filter(setChange).length, 1, 'one line for the change');
    await routing(proc, 2, 2, mark);
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) seen.add((await get(proxyPort, '/x')).body.trim());
    assert.equal([...seen].sort(), ['u2', 'u3'], 'the removed address gets no request, the new ones do');
    assert.is(list[0]!.received.length, 1);

    const status = JSON.parse((await get(adminPort, '/status')).body) as { upstreams: Fields[] };
    const upstream = status.upstreams.find((u) => u['name'] === 'default')!;
    assert.is(upstream['source'], 'dns');
    assert.is(upstream['dns'], 'api.test');
    assert.equal(upstream['addresses'], [`127.0.0.2:${port}`, `127.0.0.3:${port}`]);
    assert.is(upstream['last_error'], null);
    assert.ok(Date.now() - Date.parse(upstream['resolved_at'] as string) < 5_000, String(upstream['resolved_at']));
    const metrics = (await get(adminPort, '/metrics')).body;
    assert.match(metrics, /sluice_dns_resolutions_total\{upstream="default",result="ok"\} [1-9]/);
  } finally {
    proc.kill('SIGTERM');
    await exitWithin(proc);
  }
});

dnsTest('a name never resolved: 503 + Retry-After, /ready false, still starting; starts once it resolves', async () => {
  const { port } = await addresses(1, 10);
  // A second upstream with a healthy backend: without the DNS rule, it alone would let start-up end.
  const web = await startUpstream('web');
  upstreams.push(web);
  const dns = await dnsServer('');
  const proc = sluiceFor(
    dns,
    port,
    { startup_timeout_ms: 30_000 },
    {
      admin: { listen_port: 0 },
      upstreams: {
        default: { discovery: { dns: 'api.test', port, refresh_ms: 1000 } },
        web: { backends: [{ address: '127.0.0.1', port: web.port }] },
      },
      routes: [
        { match: { path_prefix: '/web' }, upstream: 'web' },
        { match: {}, upstream: 'default' },
      ],
    },
  );
  try {
    const proxyPort = await proc.port();
    const adminPort = (await proc.waitForLog((l) => l['event'] === 'admin.listening'))['port'] as number;
    const warned = await proc.waitForLog((l) => l['upstream'] === 'default' && l['code'] === 'ENOTFOUND');
    assert.is(warned.level, 40);
    const answer = await get(proxyPort, '/x');
    assert.is(answer.status, 503);
    assert.ok(answer.headers['retry-after'], 'Retry-After');
    assert.is((await get(proxyPort, '/ready')).status, 503);
    await proc.waitForLog((l) => l['backend'] === `127.0.0.1:${web.port}` && l['to'] === 'healthy');
    // Failures are retried at the refresh interval, warned once while the code stays the same.
    const twice = /sluice_dns_resolutions_total\{upstream="default",result="ENOTFOUND"\} ([2-9]|\d\d)/;
    const retried = await waitForMetric(adminPort, twice);
    assert.ok(retried);
    assert.is(proc.lines.filter((l) => l['code'] === 'ENOTFOUND').length, 1, 'one warning for one code');
    assert.not.ok(proc.lines.some(transitionTo('healthy')), 'still starting');
    const status = JSON.parse((await get(adminPort, '/status')).body) as { state: string; upstreams: Fields[] };
    assert.is(status.state, 'starting');
    const api = status.upstreams.find((u) => u['name'] === 'default')!;
    assert.equal([api['source'], api['addresses'], api['resolved_at']], ['dns', [], null]);
    assert.is((api['last_error'] as { code: string }).code, 'ENOTFOUND');

    await dns.setHosts(`127.0.0.10 api.test`);
    await proc.waitForLog(transitionTo('healthy'), 10_000);
    await proc.waitForLog((l) => l['upstream'] === 'default' && l['from'] === 'ENOTFOUND');
    assert.is((await get(proxyPort, '/x')).body, 'u10\n');
  } finally {
    proc.kill('SIGTERM');
    await exitWithin(proc);
  }
});

/** Polls /metrics until it matches (the counter moves once per refresh). */
async function waitForMetric(adminPort: number, pattern: RegExp): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    if (pattern.test((await get(adminPort, '/metrics')).body)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

dnsTest('a removed address finishes its in-flight request; new requests go elsewhere at once', async () => {
  const { port, list } = await addresses(2, 20);
  const dns = await dnsServer(hostsFor(20, 21));
  const proc = sluiceFor(dns, port);
  try {
    const proxyPort = await proc.port();
    await proc.waitForLog(transitionTo('healthy'));
    await routing(proc, 2, 2, 0);
    const slow = get(proxyPort, '/slow', { timeoutMs: 15_000 });
    const holder = await Promise.race(list.map((u) => u.nextHeld().then(() => u)));
    const other = list.find((u) => u !== holder)!;
    const keep = holder === list[0] ? 21 : 20;
    const mark = proc.lines.length;
    await dns.setHosts(hostsFor(keep));
    const change = await proc.waitForLog(setChange, 10_000, mark);
    assert.equal(change['removed'], [`127.0.0.${keep === 20 ? 21 : 20}:${port}`]);
    await routing(proc, 1, 1, mark);
    for (let i = 0; i < 4; i++) assert.is((await get(proxyPort, '/x')).body.trim(), other.name);
    holder.release();
    const finished = await slow;
    const message = 'the request in flight finished on the removed backend';
    assert.equal([finished.status, finished.body], [200, `${holder.name}\n`], message);
  } finally {
    proc.kill('SIGTERM');
    await exitWithin(proc);
  }
});

dnsTest('a reload keeps what DNS gave: no set change, still routed, still probed', async () => {
  const { port, list } = await addresses(2, 40);
  const dns = await dnsServer(hostsFor(40, 41));
  const file = writeConfig(configFor(dns, port));
  const proc = startSluice(['-c', file, '--log-level', 'debug']);
  try {
    const proxyPort = await proc.port();
    await proc.waitForLog(transitionTo('healthy'));
    await routing(proc, 2, 2, 0);
    const mark = proc.lines.length;
    proc.kill('SIGHUP');
    await proc.waitForLog((l) => l['event'] === 'RELOAD', 10_000, mark);
    // Two refreshes later: the set never changed, and both still serve.
    const reloaded = proc.lines.length;
    const resolved = (l: LogLine) => l['event'] === 'dns.resolved' && l['result'] === 'ok';
    const refreshed = await proc.waitForLog(resolved, 10_000, reloaded);
    await proc.waitForLog(resolved, 10_000, proc.lines.indexOf(refreshed) + 1);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await get(proxyPort, '/x')).body.trim());
    assert.equal([...seen].sort(), ['u40', 'u41']);
    // The health checker still probes them after the reload: a failing one is noticed.
    list[0]!.healthStatus = 503;
    const down = (l: LogLine) => l['backend'] === `127.0.0.40:${port}` && l['to'] === 'unhealthy';
    const flip = await proc.waitForLog(down, 10_000, mark);
    assert.ok(flip);
    assert.is(proc.lines.slice(mark).filter(setChange).length, 0, 'no set change');
    const warned = proc.lines.some((l) => l['event'] === 'backends.none');
    assert.not.ok(warned, 'discovery counts as backends');
  } finally {
    proc.kill('SIGTERM');
    await exitWithin(proc);
  }
});

dnsTest('a restarted pool actor starts from what DNS gave: still routed, no set change', async () => {
  const { port } = await addresses(1, 50);
  const dns = await dnsServer(hostsFor(50));
  const triggerPort = await freePort();
  const crashHook = fileURLToPath(new URL('../support/crash-hook.ts', import.meta.url));
  const proc = startSluice(['-c', writeConfig(configFor(dns, port)), '--log-level', 'debug'], {
    env: { SLUICE_TEST_HOOKS: crashHook, SLUICE_TEST_CRASH: `pool:0:on-connect:${triggerPort}` },
  });
  try {
    const proxyPort = await proc.port();
    await proc.waitForLog(transitionTo('healthy'));
    await routing(proc, 1, 1, 0);
    const mark = proc.lines.length;
    assert.is(await tryConnect(triggerPort), 'connected');
    await proc.waitForLog((l) => l['event'] === 'actor.restarted' && l['actor'] === 'pool', 10_000, mark);
    assert.is((await get(proxyPort, '/after-restart')).body, 'u50\n');
    const restarted = proc.lines.length;
    await proc.waitForLog((l) => l['event'] === 'dns.resolved' && l['result'] === 'ok', 10_000, restarted);
    assert.is(proc.lines.slice(mark).filter(setChange).length, 0, 'the restarted pool had the set already');
  } finally {
    proc.kill('SIGTERM');
    await exitWithin(proc);
  }
});

dnsTest('SRV: weights balance the lowest priority; the next serves only when it has no healthy backend', async () => {
  const { port, list } = await addresses(3, 60);
  const dns = await dnsServer('127.0.0.60 t1.test\n127.0.0.61 t2.test\n127.0.0.62 t3.test', [
    `_http._tcp.jobs.test,t1.test,${port},10,3`,
    `_http._tcp.jobs.test,t2.test,${port},10,1`,
    `_http._tcp.jobs.test,t3.test,${port},20,1`,
  ]);
  const upstreamsConfig = { default: { discovery: { dns: '_http._tcp.jobs.test', type: 'SRV', refresh_ms: 1000 } } };
  const file = writeConfig(configFor(dns, port, { workers: 1 }, { upstreams: upstreamsConfig }));
  const proc = startSluice(['-c', file, '--log-level', 'debug']);
  try {
    const proxyPort = await proc.port();
    await proc.waitForLog(transitionTo('healthy'));
    // All three are probed and healthy; only priority 10 is selectable.
    for (const u of list) {
      await proc.waitForLog((l) => l['backend'] === `127.0.0.${u.name.slice(1)}:${port}` && l['to'] === 'healthy');
    }
    await routing(proc, 3, 2, 0, 1);
    const answers: string[] = [];
    for (let i = 0; i < 8; i++) answers.push((await get(proxyPort, '/x')).body.trim());
    const share = (name: string) => answers.filter((a) => a === name).length;
    assert.equal([share('u60'), share('u61'), share('u62')], [6, 2, 0], answers.join(' '));

    // Snapshots reach the listener after the flips are logged, in no fixed order with them: ask until it shows.
    const answer = async () => (await get(proxyPort, '/x')).body.trim();
    list[0]!.healthStatus = 503;
    list[1]!.healthStatus = 503;
    await until(answer, (a) => a === 'u62', 100, 50);
    for (let i = 0; i < 3; i++) assert.is(await answer(), 'u62', 'priority 20 takes over');
    list[1]!.healthStatus = 200;
    await until(answer, (a) => a === 'u61', 100, 50);
    for (let i = 0; i < 3; i++) assert.is((await get(proxyPort, '/x')).body.trim(), 'u61', 'back to priority 10');
  } finally {
    proc.kill('SIGTERM');
    await exitWithin(proc);
  }
});

dnsTest('zero loss under load: half the addresses removed and new ones added mid-run, no request fails', async () => {
  const first = await addresses(4, 30);
  await addresses(2, 34, first.port);
  const dns = await dnsServer(hostsFor(30, 31, 32, 33));
  const proc = sluiceFor(dns, first.port);
  try {
    const proxyPort = await proc.port();
    await proc.waitForLog(transitionTo('healthy'));
    await routing(proc, 4, 4, 0);
    const load = startLoad(proxyPort, { clients: 8 });
    try {
      await load.okAfter(300);
      const mark = proc.lines.length;
      await dns.setHosts(hostsFor(32, 33, 34, 35));
      const change = await proc.waitForLog(setChange, 10_000, mark);
      assert.equal(change['removed'], [`127.0.0.30:${first.port}`, `127.0.0.31:${first.port}`]);
      await routing(proc, 4, 4, mark);
      const switched = load.answeredBy.length;
      await load.okAfter(400);
      const after = new Set(load.answeredBy.slice(switched + 16));
      assert.ok(!after.has('u30') && !after.has('u31'), `only the new set answers: ${[...after].join(',')}`);
      assert.ok(after.has('u34') && after.has('u35'), `the new addresses serve: ${[...after].join(',')}`);
      const counts = await load.stop();
      const none = { ok: 0, refused: 0, unaccepted: 0, reset: 0, status5xx: 0, otherStatus: 0, truncated: 0, other: 0 };
      assert.equal({ ...counts, ok: 0 }, none, `${JSON.stringify(counts)} ${load.failures.join('; ')}`);
      assert.ok(counts.ok > 700, JSON.stringify(counts));
    } finally {
      await load.stop();
    }
  } finally {
    proc.kill('SIGTERM');
    await exitWithin(proc);
  }
});

test.run();
