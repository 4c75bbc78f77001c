/**
 * An origin for cache tests: each path answers as its handler says, and
 * every request it gets is counted per path (health probes apart), so a test
 * can say how many requests reached the upstream.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { HEALTH_PATH } from './upstream.ts';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface Origin {
  port: number;
  /** Requests per path (with query), probes excluded. */
  count(path: string): number;
  /** The requests a path got, in order. */
  requests(path: string): IncomingMessage[];
  on(path: string, handler: Handler): void;
  close(): Promise<void>;
}

export async function startOrigin(): Promise<Origin> {
  const handlers = new Map<string, Handler>();
  const seen = new Map<string, IncomingMessage[]>();
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    if (path === HEALTH_PATH) return void res.writeHead(200, { 'content-length': '0' }).end();
    seen.set(path, [...(seen.get(path) ?? []), req]);
    const handler = handlers.get(path);
    if (!handler) return void res.writeHead(404, { 'content-length': '0' }).end();
    handler(req, res);
  });
  server.keepAliveTimeout = 10_000;
  const port = await new Promise<number>((resolve) =>
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve((server.address() as { port: number }).port)),
  );
  return {
    port,
    count: (path) => seen.get(path)?.length ?? 0,
    requests: (path) => seen.get(path) ?? [],
    on: (path, handler) => void handlers.set(path, handler),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A handler that answers 200 with `body` and `headers`. */
export function answer(body: string, headers: Record<string, string> = {}, status = 200): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  };
}
