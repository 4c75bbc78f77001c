/**
 * TLS to upstreams, against real TLS backends whose certificates are made
 * at test time: verified against `ca` and `servername` (a wrong CA or a
 * wrong name is a 502 with SLUICE_UPSTREAM_TLS), health checks over TLS,
 * connections kept and reused, on the fast path and on Node's; a CA file
 * that cannot be read is a config error.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testCa, type TestCa } from '../support/certs.ts';
import { testConfig } from '../support/config-file.ts';
import { get } from '../support/http.ts';
import {
  killAll,
  mainFile,
  type LogLine,
  type SluiceProcess,
  startRouting,
  stopSluice,
} from '../support/sluice-process.ts';
import { HEALTH_PATH } from '../support/upstream.ts';

/** A TLS backend: answers its name, counts the TLS connections that carried proxied requests. */
interface TlsBackend {
  port: number;
  id: string;
  /** Connections (one handshake each) that carried a request other than a health probe. */
  proxiedConnections: Set<object>;
  /** Serve another certificate from now on, and close every connection (sluice must connect anew). */
  serve(pair: { cert: string; key: string }): void;
  close(): Promise<void>;
}

async function startTlsBackend(name: string, pair: { cert: string; key: string }): Promise<TlsBackend> {
  const open = new Set<TLSSocket>();
  // The sockets Node's https server hands its handler (typed Socket there) are TLSSockets: kept as objects.
  const proxiedConnections = new Set<object>();
  const read = (p: { cert: string; key: string }) => ({ cert: readFileSync(p.cert), key: readFileSync(p.key) });
  const server: Server = createServer(read(pair), (req, res) => {
    if (req.url !== HEALTH_PATH) proxiedConnections.add(req.socket);
    const body = req.url === HEALTH_PATH ? '' : `${name}\n`;
    res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    id: `127.0.0.1:${port}`,
    proxiedConnections,
    serve(next) {
      server.setSecureContext(read(next));
      for (const socket of open) socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Ctx {
  ca?: TestCa;
  otherCa?: TestCa;
  api?: TlsBackend;
  checked?: TlsBackend;
  pairs?: Record<'api' | 'checked' | 'untrusted' | 'misnamed', { cert: string; key: string }>;
  config?: string;
  sluice?: SluiceProcess;
  port?: number;
}
const upstreamTls = suite<Ctx>('upstream-tls');

function writeUpstreamConfig(ctx: Ctx, name: string, proxy: Record<string, unknown> = {}): string {
  const file = join(ctx.ca!.dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      ...testConfig([], { workers: 1, ...proxy }),
      upstreams: {
        // TLS on the group; health checked once at start only, so a changed certificate reaches requests first.
        api: {
          backends: [{ address: '127.0.0.1', port: ctx.api!.port }],
          tls: { servername: 'api.internal', ca: 'ca.pem' },
          health_check: { interval_ms: 600_000 },
        },
        // TLS on the backend itself, checked every 100 ms.
        checked: {
          backends: [
            {
              address: '127.0.0.1',
              port: ctx.checked!.port,
              tls: { servername: 'checked.internal', ca: 'ca.pem', verify: true },
            },
          ],
        },
      },
      routes: [
        { match: { path_prefix: '/checked' }, upstream: 'checked' },
        { match: { path_prefix: '/' }, upstream: 'api' },
      ],
      access_log: { file: '-' },
    }),
  );
  return file;
}

upstreamTls.before(async (ctx) => {
  ctx.ca = testCa();
  ctx.otherCa = testCa();
  ctx.pairs = {
    api: ctx.ca.leaf('api', ['api.internal']),
    checked: ctx.ca.leaf('checked', ['checked.internal']),
    // The right name, from a CA sluice does not trust.
    untrusted: ctx.otherCa.leaf('untrusted', ['api.internal', 'checked.internal']),
    // The trusted CA, for another name.
    misnamed: ctx.ca.leaf('misnamed', ['other.internal']),
  };
  ctx.api = await startTlsBackend('api', ctx.pairs.api);
  ctx.checked = await startTlsBackend('checked', ctx.pairs.checked);
  ctx.config = writeUpstreamConfig(ctx, 'fast');
  // Healthy only once both backends passed a health check over TLS.
  ({ sluice: ctx.sluice, port: ctx.port } = await startRouting(['-c', ctx.config], 1, 2));
});

upstreamTls.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  await ctx.api?.close();
  await ctx.checked?.close();
  killAll();
});

/** The access-log line of `path` (the access log goes to stdout). */
const accessLine = (sluice: SluiceProcess, path: string) =>
  sluice.waitForLog((l: LogLine) => l['path'] === path && 'status' in l && 'thread' in l);

upstreamTls('a verified backend answers; two requests share one TLS connection', async (ctx) => {
  const before = ctx.api!.proxiedConnections.size;
  const first = await get(ctx.port!, '/reuse-1');
  const second = await get(ctx.port!, '/reuse-2');
  assert.is(first.status, 200);
  assert.is(first.body, 'api\n');
  assert.is(second.status, 200);
  assert.is(ctx.api!.proxiedConnections.size - before, 1, 'one TLS handshake for both requests');
  assert.is((await accessLine(ctx.sluice!, '/reuse-2'))['backend'], ctx.api!.id);
});

upstreamTls('a certificate from an untrusted CA: 502 SLUICE_UPSTREAM_TLS', async (ctx) => {
  ctx.api!.serve(ctx.pairs!.untrusted);
  try {
    const answer = await get(ctx.port!, '/untrusted');
    assert.is(answer.status, 502);
    const line = await accessLine(ctx.sluice!, '/untrusted');
    assert.is(line['error'], 'SLUICE_UPSTREAM_TLS');
    assert.is(line['status'], 502);
  } finally {
    ctx.api!.serve(ctx.pairs!.api);
  }
});

upstreamTls('a certificate for another name than servername: 502 SLUICE_UPSTREAM_TLS', async (ctx) => {
  ctx.api!.serve(ctx.pairs!.misnamed);
  try {
    const answer = await get(ctx.port!, '/misnamed');
    assert.is(answer.status, 502);
    assert.is((await accessLine(ctx.sluice!, '/misnamed'))['error'], 'SLUICE_UPSTREAM_TLS');
  } finally {
    ctx.api!.serve(ctx.pairs!.api);
  }
  // Back to the right certificate: the next request connects anew and is verified.
  assert.is((await get(ctx.port!, '/fixed')).status, 200);
});

upstreamTls('health checks speak TLS: a certificate that stops verifying makes the backend unhealthy', async (ctx) => {
  const sluice = ctx.sluice!;
  const id = ctx.checked!.id;
  const healthy = await sluice.waitForLog((l) => l['backend'] === id && l['to'] === 'healthy');
  assert.is(healthy['reason'], 'status 200');
  const mark = sluice.lines.length;
  ctx.checked!.serve(ctx.pairs!.untrusted);
  const down = await sluice.waitForLog((l) => l['backend'] === id && l['to'] === 'unhealthy', 10_000, mark);
  assert.match(String(down['reason']), /^SLUICE_UPSTREAM_TLS \(/);
  ctx.checked!.serve(ctx.pairs!.checked);
  await sluice.waitForLog((l) => l['backend'] === id && l['to'] === 'healthy', 10_000, mark);
});

upstreamTls("Node's path (fast_path: false) verifies the same way", async (ctx) => {
  const { sluice, port } = await startRouting(['-c', writeUpstreamConfig(ctx, 'node', { fast_path: false })], 1, 2);
  try {
    assert.is((await get(port, '/node-good')).status, 200);
    ctx.api!.serve(ctx.pairs!.untrusted);
    assert.is((await get(port, '/node-untrusted')).status, 502);
    assert.is((await accessLine(sluice, '/node-untrusted'))['error'], 'SLUICE_UPSTREAM_TLS');
  } finally {
    ctx.api!.serve(ctx.pairs!.api);
    await stopSluice(sluice);
  }
});

upstreamTls('-t: an unreadable CA file is one line naming the file and the JSON path', (ctx) => {
  const file = join(ctx.ca!.dir, 'missing-ca.json');
  writeFileSync(
    file,
    JSON.stringify({
      upstreams: { api: { backends: [{ address: '127.0.0.1', port: 8443 }], tls: { ca: 'missing.pem' } } },
    }),
  );
  const result = spawnSync(process.execPath, [mainFile, '-t', '-c', file], { encoding: 'utf8', timeout: 10_000 });
  assert.is(result.status, 2);
  assert.is(
    result.stderr,
    `sluice: ${file}: $.upstreams.api.tls.ca: cannot read the file (ENOENT) (got ${JSON.stringify(join(ctx.ca!.dir, 'missing.pem'))})\n`,
  );
});

upstreamTls.run();
