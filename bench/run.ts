/**
 * `npm run bench`: sluice side by side with nginx, HAProxy, node-http-proxy
 * and @fastify/http-proxy, in one run on this machine.
 *
 * Method: one upstream (nginx returning a short body, or a tiny Node server
 * when nginx is missing) and wrk run on core 1; each proxy, one worker, is
 * pinned to core 0 with taskset; sluice and nginx also run with two workers
 * on both cores. All targets start once; after a warm-up, `wrk -t1 -c64
 * -d<seconds>s --latency` measures each in turn, for several interleaved
 * rounds, and each figure is the median of its rounds; sluice's ratio to
 * each competitor is the median of the per-round ratios. A reference
 * target, the Node floor (bench/targets/node-floor.ts: raw sockets, no HTTP
 * rules), shows the most any Node proxy could get here. Then the RSS of
 * sluice and of nginx holding 10,000 idle keep-alive client connections.
 * Ratios compare runs of the same session; absolute numbers depend on the
 * machine and its neighbours. Last, the start-up and memory part
 * (bench/startup.ts), which `npm run bench -- startup` runs alone.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { treeRss } from './rss.ts';
import { floorsBench } from './floors.ts';
import { startupBench } from './startup.ts';
import { tlsBench } from './tls.ts';

const seconds = Number(process.env['BENCH_SECONDS'] ?? 4);
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 5);
const connections = Number(process.env['BENCH_CONNECTIONS'] ?? 64);
const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
// nginx's workers run as `nobody`: proxy_cache writes its temporary files under here, which mkdtemp's 0700 forbids.
chmodSync(work, 0o755);
const children: ChildProcess[] = [];
const has = (command: string) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
const pinned = (core: string, command: string, args: string[]) =>
  (has('taskset') ? ['taskset', ['-c', core, command, ...args]] : [command, args]) as [string, string[]];

// SIGTERM, not SIGKILL: an nginx master killed outright leaves its workers serving on the bench's ports.
process.on('exit', () => children.forEach((c) => c.kill('SIGTERM')));

function start(name: string, command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    if (/error|emerg|alert/i.test(text)) process.stderr.write(`[${name}] ${text}`);
  });
  children.push(child);
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

async function waitUntilServing(port: number, path = '/'): Promise<void> {
  // Up to 60 s: a dozen proxies start at once on two cores.
  let last = 'no answer';
  for (let i = 0; i < 1200; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (error) {
      // not listening yet: try again
      last = String((error as Error & { cause?: Error }).cause ?? error);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing answered 200 on port ${port}${path} (last: ${last})`);
}

// Below Linux's ephemeral range (32768 and up), where wrk's and the proxies' own connections take their ports.
let nextPort = 20000 + Math.floor(Math.random() * 10000);
const port = () => nextPort++;

function nginxConf(name: string, body: string, workers = 1): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes ${workers}; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  ${body} }\n`,
  );
  return conf;
}

async function startUpstream(): Promise<{ port: number; kind: string }> {
  const upstreamPort = port();
  if (has('nginx')) {
    // /cached: the same answer, storable for an hour (the cache part of the run).
    const conf = nginxConf(
      'upstream',
      `server { listen 127.0.0.1:${upstreamPort}; location / { return 200 "hello from the upstream\\n"; }
      location = /cached { add_header Cache-Control "max-age=3600"; return 200 "hello from the upstream\\n"; } }`,
    );
    start('upstream', ...pinned('1', 'nginx', ['-c', conf, '-p', work]));
    await waitUntilServing(upstreamPort);
    return { port: upstreamPort, kind: 'nginx' };
  }
  const script = `require('http').createServer((q,s)=>{if(q.url==='/cached')s.setHeader('cache-control','max-age=3600');s.end('hello from the upstream\\n')}).listen(${upstreamPort},'127.0.0.1')`;
  start('upstream', ...pinned('1', process.execPath, ['-e', script]));
  await waitUntilServing(upstreamPort);
  return { port: upstreamPort, kind: 'node' };
}

interface Result {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: string;
}

function parseLatency(text: string, label: string): number {
  const match = new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s)`, 'm').exec(text);
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

function wrk(name: string, targetPort: number, cores = '1', path = '/'): Result {
  const [command, args] = pinned(cores, 'wrk', [
    '-t1',
    `-c${connections}`,
    `-d${seconds}s`,
    '--latency',
    `http://127.0.0.1:${targetPort}${path}`,
  ]);
  const run = spawnSync(command, args, { encoding: 'utf8' });
  const text = run.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? Number.NaN);
  const errors = [/Socket errors: (.*)/.exec(text)?.[1], /Non-2xx or 3xx responses: (\d+)/.exec(text)?.[0]]
    .filter(Boolean)
    .join('; ');
  return { name, rps, p50: parseLatency(text, '50%'), p99: parseLatency(text, '99%'), errors };
}

interface Target {
  name: string;
  port: number;
  /** Where wrk runs: core 1 for one-worker proxies, both cores for the two-worker runs. */
  cores: string;
  launch: () => ChildProcess | undefined;
  /** What wrk asks for (default `/`). */
  path?: string;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/**
 * Every target is started once and stays up (idle when not measured); then
 * `rounds` rounds each measure every target in turn, after a warm-up, and
 * each figure is the median over the rounds. Interleaving keeps a noisy
 * neighbour from landing on one target only.
 */
/** A target's medians, and what each round measured. */
interface Summary extends Result {
  rounds: number[];
  p99Rounds: number[];
}

async function measureAll(targets: Target[], rounds: number): Promise<Summary[]> {
  const children = targets.map((t) => t.launch());
  for (const t of targets) await waitUntilServing(t.port, t.path);
  for (const t of targets) wrk(t.name, t.port, t.cores, t.path); // warm-up (JIT, connection pools, the cache's entry), not counted
  const runs = new Map<string, Result[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const t of targets) runs.get(t.name)?.push(wrk(t.name, t.port, t.cores, t.path));
  }
  for (const child of children) if (child) await stop(child);
  return targets.map((t) => {
    const all = runs.get(t.name) ?? [];
    const result: Summary = {
      name: t.name,
      rps: median(all.map((r) => r.rps)),
      p50: median(all.map((r) => r.p50)),
      p99: median(all.map((r) => r.p99)),
      errors: all
        .map((r) => r.errors)
        .filter(Boolean)
        .join('; '),
      rounds: all.map((r) => Math.round(r.rps)),
      p99Rounds: all.map((r) => r.p99),
    };
    console.log(
      `${t.name.padEnd(40)} ${result.rps.toFixed(0).padStart(8)} req/s   p50 ${result.p50.toFixed(2).padStart(7)} ms   p99 ${result.p99.toFixed(2).padStart(7)} ms   rounds ${result.rounds.join(' / ')} ${result.errors}`,
    );
    return result;
  });
}

function sluiceConfig(
  upstreamPort: number,
  listenPort: number,
  workers: number,
  fastPath = true,
  extra: Record<string, unknown> = {},
): string {
  const file = join(work, `sluice-${listenPort}.json`);
  const { proxy, ...rest } = extra as { proxy?: Record<string, unknown> };
  writeFileSync(
    file,
    JSON.stringify({
      proxy: {
        listen_host: '127.0.0.1',
        listen_port: listenPort,
        workers,
        max_connections: 30000,
        fast_path: fastPath,
        ...proxy,
      },
      backends: [{ address: '127.0.0.1', port: upstreamPort }],
      log: { level: 'warn' },
      ...rest,
    }),
  );
  return file;
}

/**
 * 100 routes as a front proxy has them: 30 hosts with 3 prefixes each, 9
 * wildcard domains, and host-less prefixes before the catch-all that wrk's
 * requests (Host 127.0.0.1, path /) end on.
 */
function hundredRoutes(): Record<string, unknown> {
  const routes: Record<string, unknown>[] = [];
  for (let h = 0; h < 30; h++) {
    for (const prefix of ['/api', '/static', '/v1'])
      routes.push({ match: { host: `svc${h}.example.com`, path_prefix: prefix }, upstream: 'default' });
  }
  for (let w = 0; w < 9; w++) routes.push({ match: { host: `*.zone${w}.example.org` }, upstream: 'default' });
  routes.push({ match: { path_prefix: '/' }, upstream: 'default' });
  return { routes };
}
const sluiceMain = join(root, 'src/main.ts');

interface Memory {
  name: string;
  before: number;
  after: number;
  opened: number;
}

/** RSS idle, then holding `count` idle keep-alive client connections (each has sent one request). */
async function rssWithIdleConnections(
  name: string,
  listenPort: number,
  launch: () => ChildProcess,
  count: number,
): Promise<Memory> {
  const child = launch();
  await waitUntilServing(listenPort);
  await new Promise((r) => setTimeout(r, 300));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} did not start`);
  const before = treeRss(pid);
  const sockets: Socket[] = [];
  for (let i = 0; i < count; i++) {
    const socket = connect({ host: '127.0.0.1', port: listenPort });
    socket.on('error', () => {
      // a refused or reset connection counts as not opened below
    });
    socket.once('connect', () => socket.write('GET / HTTP/1.1\r\nHost: bench\r\n\r\n'));
    sockets.push(socket);
    if (i % 500 === 499) await new Promise((r) => setTimeout(r, 20));
  }
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise((resolve) =>
          s.connecting ? s.once('connect', resolve).once('error', resolve) : resolve(undefined),
        ),
    ),
  );
  await new Promise((r) => setTimeout(r, 1_000));
  const opened = sockets.filter((s) => !s.destroyed).length;
  const after = treeRss(pid);
  sockets.forEach((s) => s.destroy());
  await stop(child);
  const result = { name, before, after, opened };
  console.log(
    `${name.padEnd(34)} RSS ${before.toFixed(0).padStart(5)} MB idle, ${after.toFixed(0).padStart(5)} MB with ${opened} idle keep-alive clients (+${(((after - before) * 1024) / Math.max(1, opened)).toFixed(1)} kB each)`,
  );
  return result;
}

async function main(): Promise<void> {
  for (const tool of ['wrk'])
    if (!has(tool)) throw new Error(`${tool} is needed: apt-get install wrk nginx-light haproxy`);
  const upstream = await startUpstream();
  console.log(
    `upstream: ${upstream.kind} on core 1; proxies on core 0; wrk -t1 -c${connections} -d${seconds}s on core 1; median of ${rounds} interleaved rounds\n`,
  );
  const targets: Target[] = [{ name: 'upstream directly', port: upstream.port, cores: '1', launch: () => undefined }];
  const add = (name: string, cores: string, launch: (p: number) => ChildProcess, path?: string) => {
    const p = port();
    targets.push({ name, port: p, cores: cores === '0' ? '1' : '0,1', launch: () => launch(p), ...(path && { path }) });
  };
  const nginxProxy = (p: number, workers: number) =>
    nginxConf(
      `proxy${workers}-${p}`,
      `upstream up { server 127.0.0.1:${upstream.port}; keepalive 64; }
      server { listen 127.0.0.1:${p}; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
      workers,
    );
  // The Node proxies come right after sluice in every round: each per-round ratio compares runs seconds apart.
  add('sluice (1 listener thread)', '0', (p) =>
    start('sluice', ...pinned('0', process.execPath, [sluiceMain, '-c', sluiceConfig(upstream.port, p, 1)])),
  );
  add('@fastify/http-proxy', '0', (p) =>
    start(
      'fastify',
      ...pinned('0', process.execPath, [
        join(root, 'bench/targets/fastify-proxy.ts'),
        String(p),
        `http://127.0.0.1:${upstream.port}`,
      ]),
    ),
  );
  add('node-http-proxy (keep-alive agent)', '0', (p) =>
    start(
      'http-proxy',
      ...pinned('0', process.execPath, [
        join(root, 'bench/targets/node-http-proxy.ts'),
        String(p),
        `http://127.0.0.1:${upstream.port}`,
      ]),
    ),
  );
  // What Node's socket API allows with no HTTP rules at all: the ceiling for any Node proxy here.
  add('Node floor (raw sockets, no HTTP rules)', '0', (p) =>
    start(
      'node-floor',
      ...pinned('0', process.execPath, [
        join(root, 'bench/targets/node-floor.ts'),
        String(p),
        `http://127.0.0.1:${upstream.port}`,
      ]),
    ),
  );
  add('sluice (fast_path off: Node http)', '0', (p) =>
    start(
      'sluice-node',
      ...pinned('0', process.execPath, [sluiceMain, '-c', sluiceConfig(upstream.port, p, 1, false)]),
    ),
  );
  if (has('nginx'))
    add('nginx (1 worker, upstream keepalive)', '0', (p) =>
      start('nginx', ...pinned('0', 'nginx', ['-c', nginxProxy(p, 1), '-p', work])),
    );
  if (has('haproxy')) {
    add('HAProxy (1 thread)', '0', (p) => {
      const cfg = join(work, `haproxy-${p}.cfg`);
      writeFileSync(
        cfg,
        `global\n  nbthread 1\n  maxconn 8000\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  http-reuse always\nfrontend f\n  bind 127.0.0.1:${p}\n  default_backend b\nbackend b\n  server s1 127.0.0.1:${upstream.port}\n`,
      );
      return start('haproxy', ...pinned('0', 'haproxy', ['-f', cfg, '-db']));
    });
  }
  // What each feature costs, each beside plain sluice in every round.
  const sluiceWith = (name: string, extra: Record<string, unknown>) =>
    add(name, '0', (p) =>
      start(name, ...pinned('0', process.execPath, [sluiceMain, '-c', sluiceConfig(upstream.port, p, 1, true, extra)])),
    );
  const sluiceWithPath = (name: string, extra: Record<string, unknown>, path: string) =>
    add(
      name,
      '0',
      (p) =>
        start(
          name,
          ...pinned('0', process.execPath, [sluiceMain, '-c', sluiceConfig(upstream.port, p, 1, true, extra)]),
        ),
      path,
    );
  sluiceWith('sluice + empty onRequestStart/End hooks', {
    proxy: { request_hooks: join(root, 'bench/targets/hooks-empty.ts') },
  });
  sluiceWith('sluice + requestFilter reading the path', {
    proxy: { request_hooks: join(root, 'bench/targets/hooks-path-filter.ts') },
  });
  sluiceWith('sluice + 100 routes', hundredRoutes());
  sluiceWith('sluice + one route', { routes: [{ match: { path_prefix: '/' }, upstream: 'default' }] });
  sluiceWith('sluice + JSON access log to a file', { access_log: { file: join(work, 'access.log'), format: 'json' } });
  // The cache (issue #16): a hit against the same storable request proxied, and against nginx's proxy_cache hits.
  const cacheDir = join(work, 'cache');
  add(
    'sluice proxying /cached (no cache)',
    '0',
    (p) =>
      start('sluice-nocache', ...pinned('0', process.execPath, [sluiceMain, '-c', sluiceConfig(upstream.port, p, 1)])),
    '/cached',
  );
  sluiceWithPath('sluice cache hit /cached', { cache: { path: cacheDir } }, '/cached');
  if (has('nginx')) {
    add(
      'nginx proxy_cache hit /cached (1 worker)',
      '0',
      (p) =>
        start(
          'nginx-cache',
          ...pinned('0', 'nginx', [
            '-c',
            nginxConf(
              `cache-${p}`,
              `proxy_cache_path ${join(work, `nginx-cache-${p}`)} keys_zone=c:10m;
        upstream up { server 127.0.0.1:${upstream.port}; keepalive 64; }
        server { listen 127.0.0.1:${p}; location / { proxy_cache c; proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
            ),
            '-p',
            work,
          ]),
        ),
      '/cached',
    );
  }
  // An A/B against another checkout of sluice (BENCH_BASELINE=/path/to/checkout, with its node_modules).
  const baseline = process.env['BENCH_BASELINE'];
  if (baseline) {
    add('sluice baseline (BENCH_BASELINE)', '0', (p) =>
      start(
        'sluice-base',
        ...pinned('0', process.execPath, [join(baseline, 'src/main.ts'), '-c', sluiceConfig(upstream.port, p, 1)]),
      ),
    );
  }
  add('sluice (2 listener threads, cores 0-1)', '0,1', (p) =>
    start('sluice2', ...pinned('0,1', process.execPath, [sluiceMain, '-c', sluiceConfig(upstream.port, p, 2)])),
  );
  if (has('nginx'))
    add('nginx (2 workers, cores 0-1)', '0,1', (p) =>
      start('nginx2', ...pinned('0,1', 'nginx', ['-c', nginxProxy(p, 2), '-p', work])),
    );
  // BENCH_ONLY=access,hooks: only the targets whose names hold one of these, beside plain sluice (a quick A/B).
  const only = process.env['BENCH_ONLY']?.split(',').filter(Boolean);
  const chosen = only
    ? targets.filter((t) => t.name.startsWith('sluice (1') || only.some((part) => t.name.includes(part)))
    : targets;
  const results = await measureAll(chosen, rounds);

  const sluice = results.find((r) => r.name.startsWith('sluice (1'));
  if (!sluice) throw new Error('the single-thread sluice target is missing from the results');
  // The ratio of each round (runs seconds apart) and their median: this machine's speed shifts
  // by half for minutes at a time, and a shift between rounds skews a ratio of two medians.
  console.log(
    '\nsluice (1 thread) relative to each: median of the per-round ratios [lowest–highest]; ratio of the medians',
  );
  const ratios: Record<string, { rps: number; rpsLow: number; rpsHigh: number; p99: number }> = {};
  for (const r of results) {
    if (r === sluice || r.name.startsWith('sluice')) continue;
    const perRound = r.rounds.map((rps, i) => sluice.rounds[i]! / rps);
    const p99PerRound = r.p99Rounds.map((p99, i) => sluice.p99Rounds[i]! / p99);
    ratios[r.name] = {
      rps: median(perRound),
      rpsLow: Math.min(...perRound),
      rpsHigh: Math.max(...perRound),
      p99: median(p99PerRound),
    };
    const x = ratios[r.name]!;
    console.log(
      `  vs ${r.name.padEnd(36)} req/s ×${x.rps.toFixed(2)} [${x.rpsLow.toFixed(2)}–${x.rpsHigh.toFixed(2)}]   p99 ×${x.p99.toFixed(2)}   (medians: ×${(sluice.rps / r.rps).toFixed(2)}, p99 ×${(sluice.p99 / r.p99).toFixed(2)})`,
    );
  }
  // Features against plain sluice, round by round: the data-path issue's budgets.
  const budgets: Record<string, number> = {
    'sluice + empty onRequestStart/End hooks': 0.85,
    'sluice + requestFilter reading the path': 0.8,
    'sluice + 100 routes': 0.95,
    'sluice + JSON access log to a file': 0.9,
    'sluice baseline (BENCH_BASELINE)': 1 / 0.95,
  };
  console.log('\nfeatures relative to plain sluice (1 thread): median of the per-round ratios [lowest–highest]');
  const featureRatios: Record<string, number> = {};
  for (const r of results) {
    if (!(r.name in budgets)) continue;
    const perRound = r.rounds.map((rps, i) => rps / sluice.rounds[i]!);
    featureRatios[r.name] = median(perRound);
    const budget = budgets[r.name]!;
    const label = r.name.includes('baseline')
      ? `sluice ÷ baseline ×${(1 / median(perRound)).toFixed(2)} (budget ≥ 0.95)`
      : `×${median(perRound).toFixed(2)} (budget ≥ ${budget})`;
    console.log(
      `  ${r.name.padEnd(44)} ${label} [${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}]`,
    );
  }
  const hit = results.find((r) => r.name === 'sluice cache hit /cached');
  const proxied = results.find((r) => r.name === 'sluice proxying /cached (no cache)');
  const nginxHit = results.find((r) => r.name.startsWith('nginx proxy_cache hit'));
  if (hit && proxied) {
    const perRound = hit.rounds.map((rps, i) => rps / proxied.rounds[i]!);
    const p99 = median(hit.p99Rounds.map((v, i) => v / proxied.p99Rounds[i]!));
    console.log(
      `  cache hit against the same request proxied: ×${median(perRound).toFixed(2)} [${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}] (budget ≥ 1.3); p99 ×${p99.toFixed(2)} (budget < 1)`,
    );
  }
  if (hit && nginxHit) {
    const perRound = hit.rounds.map((rps, i) => rps / nginxHit.rounds[i]!);
    console.log(
      `  cache hit against nginx proxy_cache hits: ×${median(perRound).toFixed(2)} [${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}] (budget ≥ 0.5)`,
    );
  }
  const oneRoute = results.find((r) => r.name === 'sluice + one route');
  const hundred = results.find((r) => r.name === 'sluice + 100 routes');
  if (oneRoute && hundred) {
    const perRound = hundred.rounds.map((rps, i) => rps / oneRoute.rounds[i]!);
    console.log(
      `  100 routes against one route: ×${median(perRound).toFixed(2)} [${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}] (budget ≥ 0.95)`,
    );
  }
  // The must of issue #3 measured against the ceiling: how far above the faster Node proxy a proxy
  // doing no HTTP work at all gets in this run.
  const floor = results.find((r) => r.name.startsWith('Node floor'));
  const nodeProxies = results.filter((r) => r.name.startsWith('@fastify') || r.name.startsWith('node-http-proxy'));
  if (floor && nodeProxies.length > 0) {
    const faster = nodeProxies.reduce((a, b) => (a.rps >= b.rps ? a : b));
    const perRound = faster.rounds.map((rps, i) => floor.rounds[i]! / rps);
    console.log(`
Node floor relative to ${faster.name}: req/s ×${median(perRound).toFixed(2)} [${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}]`);
  }
  const idle = Number(process.env['BENCH_IDLE'] ?? 10_000);
  console.log('');
  const memory: Memory[] = [];
  {
    const p = port();
    memory.push(
      await rssWithIdleConnections(
        'sluice (1 listener thread)',
        p,
        () =>
          start('sluice-rss', ...pinned('0', process.execPath, [sluiceMain, '-c', sluiceConfig(upstream.port, p, 1)])),
        idle,
      ),
    );
  }
  if (has('nginx')) {
    const p = port();
    const conf = nginxConf(
      `rss-${p}`,
      `upstream up { server 127.0.0.1:${upstream.port}; keepalive 64; }
      server { listen 127.0.0.1:${p}; keepalive_timeout 300s; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
    );
    memory.push(
      await rssWithIdleConnections(
        'nginx (1 worker)',
        p,
        () => start('nginx-rss', ...pinned('0', 'nginx', ['-c', conf, '-p', work])),
        idle,
      ),
    );
  }
  const out = join(root, 'bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(
    join(out, 'latest.json'),
    JSON.stringify(
      {
        at: new Date().toISOString(),
        seconds,
        rounds,
        connections,
        upstream: upstream.kind,
        results,
        ratios,
        featureRatios,
        memory,
      },
      null,
      2,
    ),
  );
  console.log(`\nresults: bench/results/latest.json`);
  for (const child of children) await stop(child);
}

// `npm run bench -- startup` (or BENCH_PART=startup): the start-up and memory part alone (a few minutes, no
// throughput rounds); `-- tls` (BENCH_PART=tls): the TLS and HTTP/2 part alone. A full run has all three, the
// TLS part unless BENCH_ONLY is given without `tls`. `-- floors` (BENCH_PART=floors): what Node itself costs under
// sluice's design (bench/floors.ts), alone only.
const part = process.argv[2] ?? process.env['BENCH_PART'];
if (part === 'startup') await startupBench({ root, work });
else if (part === 'tls') await tlsBench({ root, work });
else if (part === 'floors') await floorsBench({ root, work });
else {
  await main();
  const only = process.env['BENCH_ONLY']?.split(',').filter(Boolean);
  if (!only || only.includes('tls')) await tlsBench({ root, work });
  await startupBench({ root, work });
}
process.exit(0);
