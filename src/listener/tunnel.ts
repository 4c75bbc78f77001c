/**
 * `Upgrade` requests (WebSocket and others): the request head goes to a
 * backend with its Upgrade and Connection headers kept, then bytes flow both
 * ways untouched until either side closes. The client socket stays counted
 * by the connection tracker, so a tunnel holds a drain open (until the drain
 * timeout) and counts against `max_connections`.
 */
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { isLoop, upstreamRequestHeaders } from './headers.ts';
import { refuseRaw } from './refuse.ts';
import type { Upstreams } from './upstreams.ts';
import { editFlatHeaders, targetAfterStrip, type Route } from '../routing/route-table.ts';

export function tunnel(
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  upstreams: Upstreams,
  route: Route | undefined,
  connectTimeoutMs: number,
  onError: (backend: string, code: string) => void,
): void {
  if (isLoop(req.rawHeaders)) return refuseRaw(client, 508, 'Loop Detected');
  const backend = upstreams.pick(req);
  if (!backend) return refuseRaw(client, upstreams.totalCount === 0 ? 503 : 502, upstreams.totalCount === 0 ? 'Service Unavailable' : 'Bad Gateway');
  let headers = upstreamRequestHeaders(req.rawHeaders, { clientIp: req.socket.remoteAddress ?? '', proto: 'http' });
  if (route?.requestHeaders) headers = editFlatHeaders(headers, route.requestHeaders);
  // The two hop-by-hop headers an upgrade is made of.
  headers.push('connection', 'upgrade', 'upgrade', String(req.headers.upgrade));
  const target = route?.stripPrefix ? targetAfterStrip(req.url ?? '/', route.stripPrefix) : req.url;
  let lines = `${req.method} ${target} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) lines += `${headers[i]}: ${headers[i + 1]}\r\n`;

  upstreams.inFlight.acquire(backend.slot);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    upstreams.inFlight.release(backend.slot);
  };
  const upstream: Socket = connect({ host: backend.address, port: backend.port });
  upstream.setTimeout(connectTimeoutMs, () => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'CONNECT_TIMEOUT' })));
  upstream.once('connect', () => {
    upstream.setTimeout(0);
    upstream.write(`${lines}\r\n`);
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
  upstream.once('error', (error: NodeJS.ErrnoException) => {
    onError(backend.id, error.code ?? error.message);
    if (upstream.readyState === 'opening' || !upstream.bytesRead) refuseRaw(client, 502, 'Bad Gateway');
    else client.destroy();
  });
  client.once('error', () => upstream.destroy());
  upstream.once('close', () => {
    release();
    client.end();
  });
  client.once('close', () => {
    release();
    upstream.destroy();
  });
}
