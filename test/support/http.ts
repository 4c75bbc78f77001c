/** Plain HTTP/1.1 requests on fresh connections (no agent), with a bounded wait. */
import { request as httpRequest } from 'node:http';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function get(
  port: number,
  path = '/',
  options: { method?: string; headers?: Record<string, string>; timeoutMs?: number; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.setTimeout(options.timeoutMs ?? 5_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Resolves with the error code a connection attempt fails with, or 'connected'. */
export async function tryConnect(port: number): Promise<string> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** Polls `probe` until `accept` holds, at most `attempts` times, `intervalMs` apart. */
/** `probe` may answer at once (a file read) or later (a request). */
export async function until<T>(
  probe: () => T | Promise<T>,
  accept: (value: T) => boolean,
  attempts = 100,
  intervalMs = 50,
): Promise<T> {
  let last: T | undefined;
  for (let i = 0; i < attempts; i++) {
    last = await probe();
    if (accept(last)) return last;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`condition not reached after ${attempts} attempts; last: ${JSON.stringify(last)}`);
}

/** A loopback port free a moment ago (for programs that must be told their port before they start). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const server = createServer().listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Raw bytes on a fresh connection, then a half-close; resolves with all the proxy sent once it closed (a reset ends it too). */
export function rawAnswer(port: number, bytes: string): Promise<string> {
  return import('node:net').then(
    ({ connect }) =>
      new Promise<string>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port });
        let received = '';
        socket.setEncoding('latin1');
        socket.on('data', (chunk: string) => (received += chunk));
        socket.on('error', () => {
          /* the test asserts on what the socket received; a reset is one such outcome */
        });
        socket.on('close', () => resolve(received));
        socket.setTimeout(5_000, () => socket.destroy());
        socket.end(bytes);
      }),
  );
}

/** rawAnswer's status line ('' when the proxy closed without one). */
export async function rawRequest(port: number, bytes: string): Promise<string> {
  return (await rawAnswer(port, bytes)).split('\r\n', 1)[0] ?? '';
}
