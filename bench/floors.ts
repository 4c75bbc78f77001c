/**
 * `npm run bench -- floors` (BENCH_PART=floors): what Node itself costs
 * under sluice's fixed design (main thread plus pool, health-checker and
 * listener actors in worker_threads), measured here, beside sluice:
 *
 * - idle RSS of a bare `node -e`; of the same with 4 worker threads that
 *   do nothing; with 4 worker threads that each load what sluice's thread
 *   of that kind loads from Node and node_modules at idle (pino, comlink
 *   and the kind's `node:` modules; see test/thread-imports.test.ts), log
 *   one pino line and answer one comlink call (which makes every isolate
 *   load Node's MessageEvent), the listeners each listening with
 *   reusePort; the same with the main thread loading xstate and zod as
 *   sluice's does; and sluice itself (`workers: 2`) once it is ready.
 *   Median of BENCH_FLOOR_RUNS (3) starts, 1 s after each is ready.
 * - RSS per idle keep-alive client: BENCH_FLOOR_CLIENTS (10,000) clients
 *   from this process, each of which read the response to one request,
 *   RSS of the server process 1 s later against before, for a bare Node
 *   `http` server, a bare `net` server reading with `onread` into one
 *   shared buffer (as sluice's fast path does, src/listener/http1/
 *   direct-reads.ts), and a bare `tls.Server` (ECDSA P-256, `noDelay`).
 *
 * None of these is pinned. The scripts are plain JavaScript (`node -e`,
 * eval'd workers): no type stripping, which sluice pays in its main
 * thread (its entry file is .ts). Results in bench/results/floors.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as tlsConnect } from 'node:tls';
import { treeRss } from './rss.ts';
import { makeCertificate } from './tls.ts';

const runs = Number(process.env['BENCH_FLOOR_RUNS'] ?? 3);
const clients = Number(process.env['BENCH_FLOOR_CLIENTS'] ?? 10_000);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const round = (value: number, digits = 1) => Number(value.toFixed(digits));
// Below Linux's ephemeral range (32768 and up), above the other parts' ports (5000–30000).
let nextPort = 30000 + Math.floor(Math.random() * 2500);

const running = new Set<ChildProcess>();
process.on('exit', () => running.forEach((c) => c.kill('SIGKILL')));

/** Runs `node -e script` (or `args`) and resolves once it printed `ready`. */
async function startScript(args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.stderr.setEncoding('utf8').on('data', (text: string) => process.stderr.write(`[floor] ${text}`));
  let text = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ').slice(0, 80)} exited with ${code}`)));
  });
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

function rssOf(child: ChildProcess): number {
  if (child.pid === undefined) throw new Error('the process did not start');
  return treeRss(child.pid);
}

const stayAlive = 'setInterval(() => {}, 1 << 30);';

/** A worker's code: the kind's `node:` modules, pino and comlink, one log line, one comlink API. */
function workerCode(builtins: string[], listens: boolean, root: string): string {
  const require = createRequire(join(root, 'package.json'));
  const pino = require.resolve('pino');
  const comlink = join(root, 'node_modules/comlink/dist/esm/comlink.mjs');
  const adapter = join(root, 'node_modules/comlink/dist/esm/node-adapter.mjs');
  return `
    ${builtins.map((b) => `require('node:${b}');`).join(' ')}
    const pino = require(${JSON.stringify(pino)});
    const log = pino({ level: 'info' }, pino.destination({ dest: 1, sync: true }));
    log.info('thread up');
    (async () => {
      const Comlink = await import(${JSON.stringify(comlink)});
      const { default: nodeEndpoint } = await import(${JSON.stringify(adapter)});
      const { parentPort } = require('node:worker_threads');
      ${listens ? `require('node:net').createServer().listen({ port: ${nextPort}, host: '127.0.0.1', reusePort: true });` : ''}
      Comlink.expose({ ping: () => 1 }, nodeEndpoint(parentPort));
    })();`;
}

// What each of sluice's threads loads from Node at idle (recorded with test/support/record-imports.ts).
const builtinsOf = {
  pool: ['assert', 'buffer', 'diagnostics_channel', 'dns/promises', 'events', 'fs', 'net', 'os', 'path', 'url', 'util'],
  health: ['assert', 'buffer', 'diagnostics_channel', 'events', 'fs', 'http', 'https', 'net', 'os', 'path', 'tls'],
  listener: [
    'assert',
    'buffer',
    'crypto',
    'diagnostics_channel',
    'events',
    'fs',
    'fs/promises',
    'http',
    'net',
    'os',
    'path',
    'perf_hooks',
    'tls',
    'url',
    'util',
    'v8',
    'vm',
  ],
};

/** The main thread's script: `count` empty workers, or sluice's 4 kinds, ready once each answered (or came online). */
function mainWithWorkers(root: string, threads: 'empty' | 'sluice-like', mainImports = false, count = 4): string {
  if (threads === 'empty')
    return `const { Worker } = require('node:worker_threads'); let up = 0;
      for (let i = 0; i < ${count}; i++) new Worker(${JSON.stringify(stayAlive)}, { eval: true })
        .once('online', () => { if (++up === ${count}) console.log('ready'); });`;
  const quiet = '{ resourceLimits: { maxYoungGenerationSizeMb: 1 }, eval: true }';
  const kinds: [string, string][] = [
    [workerCode(builtinsOf.pool, false, root), quiet],
    [workerCode(builtinsOf.health, false, root), quiet],
    [workerCode(builtinsOf.listener, true, root), '{ eval: true }'],
    [workerCode(builtinsOf.listener, true, root), '{ eval: true }'],
  ];
  const extra = mainImports ? `await import(req.resolve('xstate')); await import(req.resolve('zod'));` : '';
  return `(async () => {
    process.chdir(${JSON.stringify(root)});
    const { Worker } = require('node:worker_threads');
    const Comlink = await import(${JSON.stringify(join(root, 'node_modules/comlink/dist/esm/comlink.mjs'))});
    const { default: nodeEndpoint } = await import(${JSON.stringify(join(root, 'node_modules/comlink/dist/esm/node-adapter.mjs'))});
    const { createRequire } = require('node:module');
    const req = createRequire(${JSON.stringify(join(root, 'package.json'))});
    ${extra}
    const pino = req('pino'); pino(pino.destination({ dest: 1, sync: true })).info('main up');
    const workers = [${kinds.map(([code, options]) => `new Worker(${JSON.stringify(code)}, ${options})`).join(', ')}];
    await Promise.all(workers.map((w) => Comlink.wrap(nodeEndpoint(w)).ping()));
    console.log('ready');
  })();`;
}

async function idleRss(args: string[], readyAt?: (child: ChildProcess) => Promise<void>): Promise<number[]> {
  const values: number[] = [];
  for (let i = 0; i < runs; i++) {
    const child = readyAt
      ? spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] })
      : await startScript(args);
    running.add(child);
    if (readyAt) await readyAt(child);
    await sleep(1_000);
    values.push(round(rssOf(child)));
    await kill(child);
  }
  return values;
}

const answer = 'HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n';
const servers = {
  'Node http server': (port: number) => `const s = require('node:http').createServer((q, r) => r.end('ok\\n'));
    s.keepAliveTimeout = 600000; s.listen(${port}, '127.0.0.1', () => console.log('ready'));`,
  // As sluice's fast path: the accepted handle moved to a Socket that reads into one shared buffer.
  'net server, onread into a shared buffer': (port: number) => `const net = require('node:net');
    const buffer = Buffer.allocUnsafeSlow(65536);
    const reply = Buffer.from('${answer}');
    net.createServer({ pauseOnConnect: true, noDelay: true }, (accepted) => {
      const socket = new net.Socket({ handle: accepted._handle, readable: true, writable: true,
        onread: { buffer, callback(n) { if (buffer.indexOf('\\r\\n\\r\\n') < n) socket.write(reply); } } });
      accepted._handle = null;
      socket.on('error', () => {});
      socket.resume();
    }).listen(${port}, '127.0.0.1', () => console.log('ready'));`,
  'tls.Server (ECDSA P-256, noDelay)': (port: number, cert?: { cert: string; key: string }) =>
    `const tls = require('node:tls'); const fs = require('node:fs');
    const reply = Buffer.from('${answer}');
    tls.createServer({ cert: fs.readFileSync(${JSON.stringify(cert?.cert)}), key: fs.readFileSync(${JSON.stringify(cert?.key)}),
      ALPNProtocols: ['http/1.1'] }, (socket) => {
      socket.setNoDelay(true); socket.on('error', () => {});
      socket.on('data', (chunk) => { if (chunk.includes('\\r\\n\\r\\n')) socket.write(reply); });
    }).listen(${port}, '127.0.0.1', () => console.log('ready'));`,
};

/** One client: connects, sends one request, resolves once the answer's body arrived (the socket stays open). */
function client(port: number, secure: boolean): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = secure
      ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
      : netConnect({ host: '127.0.0.1', port });
    socket.once('error', () => resolve(undefined));
    socket.once(secure ? 'secureConnect' : 'connect', () => socket.write('GET / HTTP/1.1\r\nHost: floor\r\n\r\n'));
    let text = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      text += chunk;
      if (text.endsWith('ok\n')) resolve(socket);
    });
  });
}

// --expose-gc: a second reading after two full collections (SIGUSR2) tells live memory from garbage.
const gcOnSignal = "process.on('SIGUSR2', () => { gc(); gc(); });";
const startServer = (script: string) => () => startScript(['--expose-gc', '-e', `${gcOnSignal} ${script}`]);

/** Polls `path` until it answers 200 (sluice prints nothing when it is ready). */
async function until200(port: number, path: string): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}${path}`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await sleep(5);
  }
  throw new Error(`nothing answered 200 on port ${port}${path}`);
}

async function perClient(
  start: () => Promise<ChildProcess>,
  port: number,
  secure: boolean,
  // sluice takes SIGUSR2 for a hot restart: no collection on demand there.
  gcOnDemand = true,
): Promise<Record<string, number>> {
  const child = await start();
  await sleep(1_000);
  const before = rssOf(child);
  const sockets: Promise<Socket | undefined>[] = [];
  for (let i = 0; i < clients; i++) {
    sockets.push(client(port, secure));
    // TLS handshakes cost the server CPU: fewer at a time, or the listen queue overflows.
    if (i % (secure ? 100 : 500) === 0) await Promise.all(sockets.slice(-(secure ? 100 : 500)));
  }
  const open = (await Promise.all(sockets)).filter((s): s is Socket => s !== undefined && !s.destroyed);
  await sleep(1_000);
  const after = rssOf(child);
  let afterGc: number | undefined;
  if (gcOnDemand) {
    child.kill('SIGUSR2');
    await sleep(1_000);
    afterGc = rssOf(child);
  }
  open.forEach((s) => s.destroy());
  await kill(child);
  const per = (mb: number) => round(((mb - before) * 1024) / Math.max(1, open.length));
  return {
    beforeMb: round(before),
    afterMb: round(after),
    opened: open.length,
    perClientKb: per(after),
    ...(afterGc !== undefined && { afterGcMb: round(afterGc), perClientAfterGcKb: per(afterGc) }),
  };
}

function showClient(label: string, m: Record<string, number>): void {
  const gc = m['perClientAfterGcKb'] === undefined ? '' : `; after a full GC ${m['perClientAfterGcKb']} kB`;
  console.log(
    `  ${`${label}: RSS per idle keep-alive client`.padEnd(64)} ${(m['perClientKb'] ?? Number.NaN).toFixed(1).padStart(6)} kB   (${m['opened']} open, ${m['beforeMb']} → ${m['afterMb']} MB${gc})`,
  );
}

export async function floorsBench({ root, work }: { root: string; work: string }): Promise<void> {
  console.log(`floors (bench/floors.ts): idle RSS, median of ${runs} starts; ${clients} idle keep-alive clients`);
  const idle: Record<string, number[]> = {};
  const show = (label: string, values: number[]) =>
    console.log(`  ${label.padEnd(64)} ${median(values).toFixed(1).padStart(6)} MB   [${values.join(' ')}]`);
  const variants: [string, string[]][] = [
    ['bare node -e', ['-e', `${stayAlive} console.log('ready')`]],
    ['bare node + 1 empty worker thread', ['-e', mainWithWorkers(root, 'empty', false, 1)]],
    ['bare node + 4 empty worker threads', ['-e', mainWithWorkers(root, 'empty')]],
    ["+ 4 workers loading what sluice's pool/health/2 listeners load", ['-e', mainWithWorkers(root, 'sluice-like')]],
    ["the same, main also loading xstate and zod (as sluice's)", ['-e', mainWithWorkers(root, 'sluice-like', true)]],
  ];
  for (const [label, args] of variants) {
    idle[label] = await idleRss(args);
    show(label, idle[label]);
  }
  const sluicePort = nextPort++;
  const config = join(work, `floors-sluice-${sluicePort}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      proxy: { listen_host: '127.0.0.1', listen_port: sluicePort, workers: 2 },
      backends: [{ address: '127.0.0.1', port: sluicePort + 1 }],
      log: { level: 'warn' },
    }),
  );
  // /live, not /ready: the backend is not running, readiness is not the question here.
  idle['sluice, workers: 2'] = await idleRss([join(root, 'src/main.ts'), '-c', config], () =>
    until200(sluicePort, '/live'),
  );
  show('sluice, workers: 2 (1 s after /live answers)', idle['sluice, workers: 2']);

  const cert = makeCertificate(work);
  const memory: Record<string, Record<string, number>> = {};
  for (const [label, script] of Object.entries(servers)) {
    const port = nextPort++;
    memory[label] = await perClient(startServer(script(port, cert)), port, label.startsWith('tls'));
    showClient(label, memory[label]);
  }
  // sluice beside them: one listener thread, the fast path, each client after one proxied request.
  const backendPort = nextPort++;
  const backend = await startScript([
    '-e',
    `require('node:http').createServer((q, r) => r.end('ok\\n')).listen(${backendPort}, '127.0.0.1', () => console.log('ready'))`,
  ]);
  const proxyPort = nextPort++;
  const proxyConfig = join(work, `floors-sluice-${proxyPort}.json`);
  writeFileSync(
    proxyConfig,
    JSON.stringify({
      proxy: {
        listen_host: '127.0.0.1',
        listen_port: proxyPort,
        workers: 1,
        max_connections: 30000,
        client_keepalive_timeout_ms: 600_000,
      },
      backends: [{ address: '127.0.0.1', port: backendPort }],
      log: { level: 'warn' },
    }),
  );
  const label = 'sluice, 1 listener thread (fast path, proxied)';
  memory[label] = await perClient(
    async () => {
      const child = spawn(process.execPath, [join(root, 'src/main.ts'), '-c', proxyConfig], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      running.add(child);
      await until200(proxyPort, '/ready');
      return child;
    },
    proxyPort,
    false,
    false,
  );
  showClient(label, memory[label]);
  await kill(backend);
  const out = join(root, 'bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(
    join(out, 'floors.json'),
    JSON.stringify({ at: new Date().toISOString(), runs, clients, idleRssMb: idle, perClient: memory }, null, 2),
  );
  console.log('  results: bench/results/floors.json');
}
