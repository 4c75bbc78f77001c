/**
 * The TLS and HTTP/2 part of `npm run bench` (alone: `npm run bench -- tls`,
 * or BENCH_PART=tls; in a full run unless BENCH_ONLY leaves out `tls`):
 * sluice beside nginx terminating TLS with the same ECDSA P-256 certificate
 * (made here with openssl), each one worker pinned to core 0, proxying to an
 * nginx upstream on core 1, the load generator on core 1 too:
 *
 * - HTTPS keep-alive: `wrk -t1 -c64` (HTTP/1.1 over TLS);
 * - new TLS handshakes per second: the same with `Connection: close`, so
 *   every request is a new connection and a full handshake (wrk keeps no
 *   session for resumption);
 * - HTTP/2: `h2load -c8 -m8` (64 streams over 8 connections), sluice's
 *   listener with `http2: true`, nginx with `listen … ssl http2`;
 * - RSS per idle TLS client connection: BENCH_TLS_IDLE connections (each
 *   read the response to one request), RSS 1 s later against idle, on a
 *   fresh process of each.
 *
 * Both targets start once and stay up; after a warm-up, every round runs
 * each load against each target in turn (interleaved), and the ratio of a
 * round compares runs seconds apart; the figure is the median of the
 * rounds' ratios. Results in bench/results/tls.json.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type TLSSocket } from 'node:tls';
import { treeRss } from './rss.ts';

const seconds = Number(process.env['BENCH_SECONDS'] ?? 4);
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 5);
const idleClients = Number(process.env['BENCH_TLS_IDLE'] ?? 2_000);
const has = (command: string) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
const pinned = (core: string, command: string, args: string[]) =>
  (has('taskset') ? ['taskset', ['-c', core, command, ...args]] : [command, args]) as [string, string[]];
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const body = 'hello from the upstream\n';

// Below the start-up part's ports (10000 and up).
let nextPort = 5000 + Math.floor(Math.random() * 4000);
const port = () => nextPort++;

const running = new Set<ChildProcess>();
process.on('exit', () => running.forEach((c) => c.kill('SIGTERM')));

function launch(name: string, command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    if (/error|emerg|alert/i.test(text)) process.stderr.write(`[${name}] ${text}`);
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
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

/** One TLS request; resolves with the socket once the whole body arrived (it stays open), or rejects. */
function tlsRequest(targetPort: number, keepOpen = false): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port: targetPort,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    let text = '';
    socket.once('error', reject);
    socket.once('secureConnect', () => socket.write('GET / HTTP/1.1\r\nHost: bench.local\r\n\r\n'));
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      text += chunk;
      if (!text.endsWith(body)) return;
      if (!keepOpen) socket.destroy();
      resolve(socket);
    });
  });
}

async function waitUntilServing(targetPort: number): Promise<void> {
  let last = 'no answer';
  for (let i = 0; i < 600; i++) {
    try {
      await tlsRequest(targetPort);
      return;
    } catch (error) {
      last = String(error);
    }
    await sleep(50);
  }
  throw new Error(`nothing answered over TLS on port ${targetPort} (last: ${last})`);
}

interface Certificate {
  cert: string;
  key: string;
}

/** An ECDSA P-256 key and a self-signed certificate for bench.local and 127.0.0.1, valid 30 days (no expiry warning). */
export function makeCertificate(dir: string): Certificate {
  const cert = join(dir, 'bench-cert.pem');
  const key = join(dir, 'bench-key.pem');
  const made = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=bench.local',
      '-addext',
      'subjectAltName=DNS:bench.local,IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { encoding: 'utf8' },
  );
  if (made.status !== 0) throw new Error(`openssl could not make the certificate: ${made.stderr}`);
  return { cert, key };
}

function nginxConf(work: string, name: string, server: string): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 300s;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  ${server} }\n`,
  );
  return conf;
}

interface Load {
  name: string;
  /** Requests (or handshakes) per second, NaN when the tool failed. */
  run: (targetPort: number) => { rate: number; errors: string };
  target: number;
}

function wrk(targetPort: number, extra: string[]): { rate: number; errors: string } {
  const [command, args] = pinned('1', 'wrk', [
    '-t1',
    '-c64',
    `-d${seconds}s`,
    ...extra,
    `https://127.0.0.1:${targetPort}/`,
  ]);
  const text = spawnSync(command, args, { encoding: 'utf8' }).stdout;
  const errors = [/Socket errors: (.*)/.exec(text)?.[1], /Non-2xx or 3xx responses: (\d+)/.exec(text)?.[0]]
    .filter(Boolean)
    .join('; ');
  return { rate: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? Number.NaN), errors };
}

function h2load(targetPort: number): { rate: number; errors: string } {
  const [command, args] = pinned('1', 'h2load', [
    '-t1',
    '-c8',
    '-m8',
    `-D${seconds}`,
    `https://127.0.0.1:${targetPort}/`,
  ]);
  const text = spawnSync(command, args, { encoding: 'utf8' }).stdout;
  const done = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(
    text,
  );
  const failed = done ? Number(done[5]) + Number(done[6]) : Number.NaN;
  const rate = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(text)?.[1] ?? Number.NaN);
  const protocol = /Application protocol: (\S+)/.exec(text)?.[1];
  const errors = [failed ? `${failed} failed or errored` : '', protocol === 'h2' ? '' : `protocol ${protocol}`]
    .filter(Boolean)
    .join('; ');
  return { rate, errors };
}

/** RSS idle, then holding `count` idle TLS connections that each read one response; a fresh process. */
async function idleTlsMemory(name: string, targetPort: number, child: ChildProcess, count: number) {
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: the process did not start`);
  await waitUntilServing(targetPort);
  await sleep(1_000);
  const before = treeRss(pid);
  const sockets: TLSSocket[] = [];
  let failed = 0;
  // A few hundred handshakes at a time: the bench's own CPU is the limit, not the target's.
  for (let i = 0; i < count; i += 100) {
    const batch = Array.from({ length: Math.min(100, count - i) }, () => tlsRequest(targetPort, true));
    for (const outcome of await Promise.allSettled(batch)) {
      if (outcome.status === 'fulfilled') sockets.push(outcome.value);
      else failed++;
    }
  }
  await sleep(1_000);
  const opened = sockets.filter((s) => !s.destroyed).length;
  const after = treeRss(pid);
  sockets.forEach((s) => s.destroy());
  await stop(child);
  const perClientKb = ((after - before) * 1024) / Math.max(1, opened);
  console.log(
    `  ${name.padEnd(44)} ${perClientKb.toFixed(1).padStart(7)} kB per idle TLS client   (${before.toFixed(0)} → ${after.toFixed(0)} MB, ${opened} open, ${failed} failed)`,
  );
  return {
    before: Number(before.toFixed(1)),
    after: Number(after.toFixed(1)),
    opened,
    failed,
    perClientKb: Number(perClientKb.toFixed(1)),
  };
}

export async function tlsBench({ root, work }: { root: string; work: string }): Promise<void> {
  for (const tool of ['wrk', 'openssl', 'nginx'])
    if (!has(tool)) throw new Error(`${tool} is needed for the TLS part: apt-get install wrk openssl nginx-light`);
  const withH2load = has('h2load');
  if (!withH2load) console.log('h2load is missing (apt-get install nghttp2-client): the HTTP/2 row is left out');
  const main = join(root, 'src/main.ts');
  const certificate = makeCertificate(work);
  const upstreamPort = port();
  const upstream = launch(
    'upstream',
    ...pinned('1', 'nginx', [
      '-c',
      nginxConf(
        work,
        'tls-upstream',
        `server { listen 127.0.0.1:${upstreamPort}; location / { return 200 "${body.trim()}\\n"; } }`,
      ),
      '-p',
      work,
    ]),
  );
  const sluiceAt = (listenPort: number) => {
    const file = join(work, `sluice-tls-${listenPort}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        // nginx's keepalive_timeout 300s below: the idle clients of the memory figure must stay open.
        proxy: { workers: 1, max_connections: 30000, client_keepalive_timeout_ms: 300_000 },
        listeners: [{ host: '127.0.0.1', port: listenPort, http2: true, tls: certificate }],
        backends: [{ address: '127.0.0.1', port: upstreamPort }],
        log: { level: 'warn' },
      }),
    );
    return launch('sluice-tls', ...pinned('0', process.execPath, [main, '-c', file]));
  };
  const nginxAt = (listenPort: number) =>
    launch(
      'nginx-tls',
      ...pinned('0', 'nginx', [
        '-c',
        nginxConf(
          work,
          `tls-proxy-${listenPort}`,
          `upstream up { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server { listen 127.0.0.1:${listenPort} ssl http2; ssl_certificate ${certificate.cert}; ssl_certificate_key ${certificate.key};
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
        ),
        '-p',
        work,
      ]),
    );

  // BENCH_TLS_LOADS=HTTP/2: only the loads whose names hold one of these (comma-separated).
  const chosenLoads = process.env['BENCH_TLS_LOADS']?.split(',').filter(Boolean);
  const loads: Load[] = [
    { name: 'HTTPS keep-alive (wrk -c64)', run: (p: number) => wrk(p, []), target: 0.6 },
    {
      name: 'new TLS handshakes (Connection: close)',
      run: (p: number) => wrk(p, ['-H', 'Connection: close']),
      target: 0.6,
    },
    ...(withH2load ? [{ name: 'HTTP/2 (h2load -c8 -m8)', run: h2load, target: 0.5 }] : []),
  ].filter((load) => !chosenLoads || chosenLoads.some((part) => load.name.includes(part)));
  const targets = [
    { name: 'sluice (1 listener thread)', port: port(), start: sluiceAt },
    { name: 'nginx (1 worker)', port: port(), start: nginxAt },
  ];
  const up = targets.map((t) => t.start(t.port));
  for (const t of targets) await waitUntilServing(t.port);
  // Warm-up: JIT, the upstream connections, TLS session caches.
  for (const load of loads) for (const t of targets) load.run(t.port);
  const measured = new Map<string, { rate: number; errors: string }[]>();
  for (let r = 0; r < rounds; r++) {
    for (const load of loads) {
      for (const t of targets) {
        const key = `${load.name}|${t.name}`;
        measured.set(key, [...(measured.get(key) ?? []), load.run(t.port)]);
      }
    }
  }
  for (const child of up) await stop(child);

  console.log(
    `\nTLS and HTTP/2 (bench/tls.ts): ECDSA P-256, one worker each on core 0, load and upstream on core 1; median of ${rounds} interleaved rounds of ${seconds} s`,
  );
  const summary: Record<string, unknown> = {};
  for (const load of loads) {
    const of = (t: { name: string }) => measured.get(`${load.name}|${t.name}`) ?? [];
    const [sluice, nginx] = [of(targets[0]!), of(targets[1]!)];
    const perRound = sluice.map((s, i) => s.rate / (nginx[i]?.rate ?? Number.NaN));
    const ratio = median(perRound);
    const errors = [...sluice, ...nginx].map((m) => m.errors).filter(Boolean);
    const rate = (runs: { rate: number }[]) =>
      median(runs.map((m) => m.rate))
        .toFixed(0)
        .padStart(7);
    const range = `[${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}]`;
    console.log(
      `  ${load.name.padEnd(40)} sluice ${rate(sluice)}/s   nginx ${rate(nginx)}/s   sluice ÷ nginx ×${ratio.toFixed(2)} ${range} (target ≥ ${load.target})${errors.length ? `   errors: ${errors.join('; ')}` : ''}`,
    );
    summary[load.name] = {
      sluice: sluice.map((m) => Math.round(m.rate)),
      nginx: nginx.map((m) => Math.round(m.rate)),
      ratio: Number(ratio.toFixed(3)),
      ratioRange: [Math.min(...perRound), Math.max(...perRound)].map((v) => Number(v.toFixed(3))),
      target: load.target,
      errors,
    };
  }
  // BENCH_TLS_IDLE=0: no memory figures.
  const memory =
    idleClients === 0
      ? {}
      : {
          sluice: await idleTlsMemory(
            'sluice: RSS per idle TLS client (target ≤ 20 kB)',
            ...fresh(sluiceAt),
            idleClients,
          ),
          nginx: await idleTlsMemory('nginx (1 worker): RSS per idle TLS client', ...fresh(nginxAt), idleClients),
        };
  await stop(upstream);
  const out = join(root, 'bench/results');
  mkdirSync(out, { recursive: true });
  const result = { at: new Date().toISOString(), seconds, rounds, idleClients, loads: summary, memory };
  writeFileSync(join(out, 'tls.json'), JSON.stringify(result, null, 2));
  console.log('  results: bench/results/tls.json');
}

/** A fresh process of a target on a new port, for the memory figures. */
function fresh(start: (p: number) => ChildProcess): [number, ChildProcess] {
  const p = port();
  return [p, start(p)];
}
