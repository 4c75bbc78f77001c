/**
 * Test upstreams on loopback: they record what they received, answer with
 * their name, and can hold a response until the test releases it.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

/** The health-check path the test configs use; probes are counted apart from forwarded requests. */
export const HEALTH_PATH = '/healthz';

export interface TestUpstream {
  name: string;
  port: number;
  /** Requests the proxy forwarded (health-check probes excluded). */
  received: ReceivedRequest[];
  probes: number;
  /** Requests to this path are held until `release()`. */
  holdPath: string;
  /** Status its health path answers with. */
  healthStatus: number;
  /** `reset`: forwarded requests get their connection destroyed (health probes still answered). */
  mode: 'normal' | 'reset';
  /** Resolves when a held request has arrived. */
  nextHeld(): Promise<void>;
  release(): void;
  close(): Promise<void>;
  /** Listen again on the same port after close(). */
  reopen(): Promise<void>;
}

/** `host`: any loopback address (127.0.0.2, ::1…), so several upstreams can share a port, as DNS names give. */
export async function startUpstream(name: string, port = 0, host = '127.0.0.1'): Promise<TestUpstream> {
  const received: ReceivedRequest[] = [];
  let held: (() => void)[] = [];
  const heldWaiters: (() => void)[] = [];
  let server: Server;
  const makeServer = () =>
    createServer((req, res) => {
      if (req.url === HEALTH_PATH) {
        upstream.probes++;
        res.writeHead(upstream.healthStatus, { 'content-length': '0' });
        res.end();
        return;
      }
      if (upstream.mode === 'reset') {
        req.socket.destroy();
        return;
      }
      received.push({ method: req.method!, url: req.url!, headers: req.headers });
      const answer = () => {
        const body = `${name}\n`;
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (req.url === upstream.holdPath) {
        held.push(answer);
        for (const w of heldWaiters.splice(0)) w();
      } else answer();
    });
  const listen = (p: number) =>
    new Promise<number>((resolve, reject) => {
      server = makeServer();
      server.once('error', reject);
      server.listen({ host, port: p }, () => resolve((server.address() as AddressInfo).port));
    });
  const upstream: TestUpstream = {
    name,
    port: await listen(port),
    received,
    probes: 0,
    holdPath: '/slow',
    healthStatus: 200,
    mode: 'normal',
    nextHeld: () => (held.length > 0 ? Promise.resolve() : new Promise<void>((resolve) => heldWaiters.push(resolve))),
    release() {
      for (const answer of held.splice(0)) answer();
    },
    close: () =>
      new Promise<void>((resolve) => {
        held = [];
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    reopen: async () => {
      await listen(upstream.port);
    },
  };
  return upstream;
}
