/**
 * The start-up and memory part of `npm run bench` (alone: `npm run bench --
 * startup`), with a `workers: 2` config and one healthy backend on loopback:
 *
 * - start to `/ready` 200: from spawning `node src/main.ts -c F` to the first
 *   200 of `GET /ready` (polled every 2 ms, a new connection each time),
 *   against a bare Node `http` server started the same way (to its first 200)
 *   and nginx (to its first 200); the median of BENCH_STARTS runs, each
 *   target in turn. sluice twice: as a user starts it (the compile cache
 *   sluice enables itself, warm), and with a cold cache (a fresh, empty
 *   NODE_COMPILE_CACHE directory: the first start after an install or an
 *   edit).
 * - idle RSS of the whole process (every thread), 1 s after ready;
 * - SIGTERM to exit, idle;
 * - RSS per idle keep-alive client connection: BENCH_IDLE connections, each
 *   of which completed one proxied request (its response was read), then
 *   RSS 1 s later, against the idle figure;
 * - RSS after 10 s of full load (wrk -t1 -c64, both cores) against idle;
 * - hot restart: `sluice restart` from its spawn to its "Proxy restarted"
 *   line, three times in a row.
 *
 * Nothing is pinned here: the proxy's threads start on both cores, as an
 * operator's would. Results go to bench/results/startup.json.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { treeRss } from './rss.ts';

const starts = Number(process.env['BENCH_STARTS'] ?? 7);
const idleClients = Number(process.env['BENCH_IDLE'] ?? 10_000);
const has = (command: string) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const round = (value: number, digits = 1) => Number(value.toFixed(digits));

// Below Linux's ephemeral range (32768 and up) and the main part's ports (20000–30000).
let nextPort = 10000 + Math.floor(Math.random() * 9000);
const port = () => nextPort++;

const running = new Set<ChildProcess>();
process.on('exit', () => running.forEach((c) => c.kill('SIGKILL')));

function launch(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  child.stdout.resume();
  child.stderr.setEncoding('utf8').on('data', (text: string) => process.stderr.write(`[${command}] ${text}`));
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** Milliseconds from SIGTERM (or `signal`) to the process's exit. */
async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number> {
  if (child.exitCode !== null || child.signalCode !== null) return 0;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const sentAt = performance.now();
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
  return performance.now() - sentAt;
}

function status(listenPort: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port: listenPort, path, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', () => resolve(0));
  });
}

/** Polls `path` every 2 ms until it answers 200; the time since `since`, in ms. */
async function untilOk(listenPort: number, path: string, since: number, child?: ChildProcess): Promise<number> {
  const deadline = since + 30_000;
  while (performance.now() < deadline) {
    if ((await status(listenPort, path)) === 200) return performance.now() - since;
    if (child && child.exitCode !== null) throw new Error(`exited with ${child.exitCode} before ${path} answered 200`);
    await sleep(2);
  }
  throw new Error(`port ${listenPort} did not answer 200 on ${path} within 30 s`);
}

interface Started {
  child: ChildProcess;
  listenPort: number;
  readyMs: number;
}

/** The PID of a target that answered: a process that failed to spawn has none, and never answers. */
function pidOf(child: ChildProcess): number {
  if (child.pid === undefined) throw new Error('the target process did not start');
  return child.pid;
}

interface Options {
  root: string;
  work: string;
}

export async function startupBench({ root, work }: Options): Promise<void> {
  console.log(`start-up and memory (bench/startup.ts): ${starts} starts of each target, ${idleClients} idle clients`);
  const main = join(root, 'src/main.ts');
  const backendPort = port();
  const backend = launch(process.execPath, [
    '-e',
    `require('http').createServer((q,s)=>s.end('ok\\n')).listen(${backendPort},'127.0.0.1')`,
  ]);
  await untilOk(backendPort, '/', performance.now());

  const config = (listenPort: number, extra: Record<string, unknown> = {}) => {
    const file = join(work, `startup-${listenPort}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        proxy: { listen_host: '127.0.0.1', listen_port: listenPort, workers: 2, max_connections: 30000, ...extra },
        backends: [{ address: '127.0.0.1', port: backendPort }],
        log: { level: 'warn' },
      }),
    );
    return file;
  };
  const startSluice = async (
    env: NodeJS.ProcessEnv = process.env,
    extra: Record<string, unknown> = {},
    entry = main,
  ): Promise<Started> => {
    const listenPort = port();
    const file = config(listenPort, extra);
    const since = performance.now();
    const child = launch(process.execPath, [entry, '-c', file], env);
    return { child, listenPort, readyMs: await untilOk(listenPort, '/ready', since, child) };
  };
  const startBare = async (): Promise<Started> => {
    const listenPort = port();
    const since = performance.now();
    const child = launch(process.execPath, [
      '-e',
      `require('http').createServer((q,s)=>s.end('ok\\n')).listen(${listenPort},'127.0.0.1')`,
    ]);
    return { child, listenPort, readyMs: await untilOk(listenPort, '/', since, child) };
  };
  const startNginx = async (): Promise<Started> => {
    const listenPort = port();
    const dir = join(work, `nginx-start-${listenPort}`);
    mkdirSync(dir, { recursive: true });
    const conf = join(dir, 'nginx.conf');
    writeFileSync(
      conf,
      `worker_processes 2; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 20000; }
http { access_log off; client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi; keepalive_timeout 300s;
  upstream up { server 127.0.0.1:${backendPort}; keepalive 64; }
  server { listen 127.0.0.1:${listenPort}; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } } }\n`,
    );
    const since = performance.now();
    const child = launch('nginx', ['-c', conf, '-p', dir]);
    return { child, listenPort, readyMs: await untilOk(listenPort, '/', since, child) };
  };

  // A fresh, empty cache directory per cold start; the warm starts use what sluice enables by itself.
  const coldEnv = () => ({ ...process.env, NODE_COMPILE_CACHE: mkdtempSync(join(work, 'compile-cache-')) });
  const warmEnv = { ...process.env };
  delete warmEnv['NODE_COMPILE_CACHE'];
  await stop((await startSluice(warmEnv)).child); // fills the default cache, not counted
  // BENCH_BASELINE=<checkout with its node_modules>: that code too, in turn with this one (an A/B).
  const baseline = process.env['BENCH_BASELINE'];
  const baselineMain = baseline === undefined ? undefined : join(baseline, 'src/main.ts');
  if (baselineMain) await stop((await startSluice(warmEnv, {}, baselineMain)).child);

  type Name = 'sluice' | 'baseline' | 'bare' | 'nginx';
  const runs = {
    sluice: [] as number[],
    baseline: [] as number[],
    cold: [] as number[],
    bare: [] as number[],
    nginx: [] as number[],
  };
  const idle = { sluice: [] as number[], baseline: [] as number[], bare: [] as number[], nginx: [] as number[] };
  const sigterm = { sluice: [] as number[], baseline: [] as number[], bare: [] as number[], nginx: [] as number[] };
  for (let i = 0; i < starts; i++) {
    const targets: [Name, () => Promise<Started>][] = [
      ['sluice', () => startSluice(warmEnv)],
      ...(baselineMain
        ? [['baseline', () => startSluice(warmEnv, {}, baselineMain)] as [Name, () => Promise<Started>]]
        : []),
      ['bare', startBare],
    ];
    if (has('nginx')) targets.push(['nginx', startNginx]);
    for (const [name, start] of targets) {
      const started = await start();
      runs[name].push(started.readyMs);
      await sleep(1_000);
      idle[name].push(treeRss(pidOf(started.child)));
      sigterm[name].push(await stop(started.child, name === 'nginx' ? 'SIGQUIT' : 'SIGTERM'));
    }
    if (i < 3) {
      const cold = await startSluice(coldEnv());
      runs.cold.push(cold.readyMs);
      await stop(cold.child);
    }
  }
  const line = (label: string, values: number[], unit: string) =>
    console.log(
      `  ${label.padEnd(46)} ${median(values)
        .toFixed(unit === 'MB' ? 1 : 0)
        .padStart(7)} ${unit}   [${values.map((v) => v.toFixed(0)).join(' ')}]`,
    );
  console.log(`\nstart-up and memory: workers: 2, one backend; median of ${starts} starts [each run]`);
  line('sluice start to /ready 200', runs.sluice, 'ms');
  if (runs.baseline.length) {
    line('baseline (BENCH_BASELINE) start to /ready 200', runs.baseline, 'ms');
    const ratios = runs.sluice.map((v, i) => v / runs.baseline[i]!);
    console.log(
      `  ${'sluice ÷ baseline, median of the per-run ratios'.padEnd(46)} ×${median(ratios).toFixed(2)}   [${ratios.map((r) => r.toFixed(2)).join(' ')}]`,
    );
  }
  line('sluice start to /ready 200, cold compile cache', runs.cold, 'ms');
  line('bare Node http server start to first 200', runs.bare, 'ms');
  if (runs.nginx.length) line('nginx (2 workers) start to first 200', runs.nginx, 'ms');
  line('sluice idle RSS', idle.sluice, 'MB');
  if (idle.baseline.length) line('baseline idle RSS', idle.baseline, 'MB');
  line('bare Node http server idle RSS', idle.bare, 'MB');
  if (idle.nginx.length) line('nginx (2 workers) idle RSS', idle.nginx, 'MB');
  line('sluice idle SIGTERM to exit', sigterm.sluice, 'ms');
  line('bare Node SIGTERM to exit', sigterm.bare, 'ms');
  if (sigterm.nginx.length) line('nginx SIGQUIT (graceful) to exit', sigterm.nginx, 'ms');

  // BENCH_STARTS_ONLY=1: the start-up rows alone (an A/B of start-up code in a few minutes).
  const startsOnly = process.env['BENCH_STARTS_ONLY'] === '1';
  const perConnection = startsOnly
    ? {}
    : {
        sluice: await clientMemory(await startSluice(warmEnv), idleClients),
        nginx: has('nginx') ? await clientMemory(await startNginx(), idleClients) : undefined,
      };
  for (const [name, m] of Object.entries(perConnection)) {
    if (m)
      console.log(
        `  ${`${name}: RSS per idle keep-alive client (${m.opened} after one request each)`.padEnd(46)} ${m.perClientKb.toFixed(1).padStart(7)} kB   (${m.before.toFixed(0)} → ${m.after.toFixed(0)} MB)`,
      );
  }
  const load = has('wrk') && !startsOnly ? await underLoad(await startSluice(warmEnv)) : undefined;
  if (load)
    console.log(
      `  ${'sluice RSS after 10 s of wrk -c64 ÷ idle'.padEnd(46)} ${`×${load.ratio.toFixed(2)}`.padStart(7)}      (${load.idle.toFixed(0)} → ${load.loaded.toFixed(0)} MB, ${load.rps.toFixed(0)} req/s)`,
    );
  const restarts = startsOnly ? undefined : await hotRestarts(main, startSluice, warmEnv, work);
  if (restarts) {
    line('sluice restart to "Proxy restarted"', restarts.command, 'ms');
    line('  of which SIGUSR2 to the new PID file (its own count)', restarts.reported, 'ms');
  }

  await stop(backend);
  const out = join(root, 'bench/results');
  mkdirSync(out, { recursive: true });
  const result = {
    at: new Date().toISOString(),
    starts,
    startToReadyMs: {
      sluice: runs.sluice.map((v) => round(v)),
      baseline: runs.baseline.map((v) => round(v)),
      sluiceColdCache: runs.cold.map((v) => round(v)),
      bareNode: runs.bare.map((v) => round(v)),
      nginx: runs.nginx.map((v) => round(v)),
    },
    idleRssMb: {
      sluice: idle.sluice.map((v) => round(v)),
      bareNode: idle.bare.map((v) => round(v)),
      nginx: idle.nginx.map((v) => round(v)),
    },
    sigtermToExitMs: {
      sluice: sigterm.sluice.map((v) => round(v)),
      bareNode: sigterm.bare.map((v) => round(v)),
      nginxSigquit: sigterm.nginx.map((v) => round(v)),
    },
    perConnection,
    load,
    restarts,
  };
  writeFileSync(join(out, 'startup.json'), JSON.stringify(result, null, 2));
  console.log('  results: bench/results/startup.json');
}

interface ClientMemory {
  before: number;
  after: number;
  opened: number;
  perClientKb: number;
}

/** `count` keep-alive clients, each of which reads the response to one request; RSS 1 s after the last. */
async function clientMemory(started: Started, count: number): Promise<ClientMemory> {
  await sleep(1_000);
  const before = treeRss(pidOf(started.child));
  const sockets: Socket[] = [];
  const answered: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const socket = connect({ host: '127.0.0.1', port: started.listenPort });
    sockets.push(socket);
    answered.push(
      new Promise<void>((resolve) => {
        socket.once('error', () => resolve());
        socket.once('connect', () => socket.write('GET / HTTP/1.1\r\nHost: bench\r\n\r\n'));
        // The backend's body ends the response: the exchange is complete, the connection idle.
        let text = '';
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString('latin1');
          if (text.endsWith('ok\n')) resolve();
        });
      }),
    );
    if (i % 500 === 499) await sleep(20);
  }
  await Promise.race([Promise.all(answered), sleep(30_000)]);
  await sleep(1_000);
  const opened = sockets.filter((s) => !s.destroyed).length;
  const after = treeRss(pidOf(started.child));
  sockets.forEach((s) => s.destroy());
  await stop(started.child);
  return {
    before: round(before),
    after: round(after),
    opened,
    perClientKb: round(((after - before) * 1024) / Math.max(1, opened)),
  };
}

/** RSS idle, then at the end of 10 s of wrk (sampled each second; the last and the highest). */
async function underLoad(
  started: Started,
): Promise<{ idle: number; loaded: number; peak: number; ratio: number; rps: number }> {
  await sleep(1_000);
  const idle = treeRss(pidOf(started.child));
  const wrk = spawn('wrk', ['-t1', '-c64', '-d10s', `http://127.0.0.1:${started.listenPort}/`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  wrk.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const samples: number[] = [];
  const sampler = setInterval(() => samples.push(treeRss(pidOf(started.child))), 1_000);
  await new Promise((resolve) => wrk.once('exit', resolve));
  clearInterval(sampler);
  await stop(started.child);
  const loaded = samples.at(-1) ?? Number.NaN;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? Number.NaN);
  return {
    idle: round(idle),
    loaded: round(loaded),
    peak: round(Math.max(...samples)),
    ratio: round(loaded / idle, 2),
    rps: round(rps, 0),
  };
}

/** Three hot restarts in a row: `sluice restart` from its spawn to its "Proxy restarted" line. */
async function hotRestarts(
  main: string,
  startSluice: (env: NodeJS.ProcessEnv, extra: Record<string, unknown>) => Promise<Started>,
  env: NodeJS.ProcessEnv,
  work: string,
): Promise<{ command: number[]; reported: number[] }> {
  const pidFile = join(work, `restart-${process.pid}.pid`);
  const started = await startSluice(env, { pid_file: pidFile });
  const command: number[] = [];
  const reported: number[] = [];
  for (let i = 0; i < 3; i++) {
    await sleep(1_000);
    const since = performance.now();
    const run = spawn(process.execPath, [main, 'restart', '--pid-file', pidFile], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let text = '';
    run.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    const code = await new Promise<number | null>((resolve) => run.once('exit', resolve));
    const match = /Proxy restarted .* after (\d+) ms/.exec(text);
    if (code !== 0 || !match) throw new Error(`sluice restart failed (exit ${String(code)}): ${text}`);
    command.push(round(performance.now() - since));
    reported.push(Number(match[1]));
  }
  // The first process drained and exited; the last successor (detached) is stopped through its PID file.
  await stop(started.child);
  const last = Number(readFileSync(pidFile, 'utf8').trim());
  process.kill(last, 'SIGTERM');
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(last, 0);
    } catch {
      break;
    }
    await sleep(25);
  }
  return { command, reported };
}
