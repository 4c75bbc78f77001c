/**
 * Two tiny upstreams for `--demo` (what `npm start` runs), served from the
 * main thread on loopback ports the kernel picks, so a newcomer sees real
 * balancing without starting anything else.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BackendSpec } from '../protocol.ts';

export interface DemoUpstreams {
  backends: BackendSpec[];
  close(): Promise<void>;
}

function serveDemo(name: string): Promise<Server> {
  const server = createServer((req, res) => {
    const body =
      JSON.stringify({ upstream: name, method: req.method, path: req.url, via: req.headers.via ?? null }) + '\n';
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve(server));
  });
}

export async function startDemoUpstreams(): Promise<DemoUpstreams> {
  const servers = await Promise.all([serveDemo('demo-a'), serveDemo('demo-b')]);
  return {
    // Weights 2:1, so the balancing is visible in a handful of curls.
    backends: servers.map((server, i) => ({
      address: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      weight: i === 0 ? 2 : 1,
      enabled: true,
    })),
    async close() {
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.closeAllConnections();
              server.close(() => resolve());
            }),
        ),
      );
    },
  };
}
