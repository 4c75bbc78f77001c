/**
 * `Upgrade` requests (WebSocket and others): the request head goes to a
 * backend of the route's upstream with its Upgrade and Connection headers
 * kept, then bytes flow both ways untouched until either side closes. The
 * client socket stays counted by the connection tracker, so a tunnel holds
 * a drain open (until the drain timeout) and counts against
 * `max_connections`.
 *
 * A connect that fails before anything was sent is retried on another
 * backend of the upstream, as the exchange retries (failures.ts says which
 * failures may be); `onEnd` reports the tunnel for the access log when it
 * closes.
 */
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { BackendState } from '../protocol.ts';
import { isTlsFailure, UPSTREAM_TLS_FAILED, upstreamTlsOptions } from '../tls/upstream-tls.ts';
import { originForm } from '../routing/origin-form.ts';
import { editFlatHeaders, targetAfterStrip, type Route } from '../routing/route-table.ts';
import { afterFailure, failureStatusText } from './retry-policy.ts';
import { isLoop, protoOf, upstreamRequestHeaders } from './headers.ts';
import { refuseRaw } from './refuse.ts';
import type { RequestId } from './request-id.ts';
import type { Upstreams } from './upstreams.ts';

/** How a tunnel went, for the access log. */
export interface TunnelOutcome {
  /** The upstream's status (101 when it switched), or the proxy's own (502, 503, 508); 499 when the client left first. */
  status: number;
  backend: string | null;
  upstreamStatus: number | null;
  attempts: number;
  error: string | null;
  /** Bytes from the upstream to the client. */
  bytesSent: number;
}

export interface TunnelOptions {
  route: Route | undefined;
  requestId: RequestId | undefined;
  connectTimeoutMs: number;
  onError: (backend: string, code: string) => void;
  onEnd?: (outcome: TunnelOutcome) => void;
}

export function tunnel(
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  upstreams: Upstreams,
  options: TunnelOptions,
): void {
  const outcome: TunnelOutcome = {
    status: 499,
    backend: null,
    upstreamStatus: null,
    attempts: 0,
    error: null,
    bytesSent: 0,
  };
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    options.onEnd?.(outcome);
  };
  const answer = (status: number, reason: string, code: string) => {
    outcome.status = status;
    outcome.error = code;
    refuseRaw(client, status, reason);
    end();
  };
  if (isLoop(req.rawHeaders)) return answer(508, 'Loop Detected', 'LOOP_DETECTED');
  const { route, requestId } = options;
  let headers = upstreamRequestHeaders(req.rawHeaders, {
    clientIp: req.socket.remoteAddress ?? '',
    proto: protoOf(req.socket),
  });
  if (route?.requestHeaders) headers = editFlatHeaders(headers, route.requestHeaders);
  if (requestId?.generated) headers.push(requestId.header, requestId.value);
  // The two hop-by-hop headers an upgrade is made of.
  headers.push('connection', 'upgrade', 'upgrade', String(req.headers.upgrade));
  const target = route?.stripPrefix ? targetAfterStrip(originForm(req.url ?? '/'), route.stripPrefix) : req.url;
  let lines = `${req.method} ${target} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) lines += `${headers[i]}: ${headers[i + 1]}\r\n`;
  const tried = new Set<string>();
  let current: Socket | undefined;
  client.once('error', () => undefined);
  client.once('close', () => {
    current?.destroy();
    end();
  });

  const attempt = (backend: BackendState | undefined): void => {
    if (client.destroyed) return;
    if (!backend) {
      if (upstreams.totalCount === 0) return answer(503, 'Service Unavailable', 'NO_BACKENDS');
      return answer(502, 'Bad Gateway', outcome.error ?? 'NO_SELECTABLE_BACKEND');
    }
    tried.add(backend.id);
    outcome.backend = backend.id;
    outcome.attempts++;
    upstreams.inFlight.acquire(backend.slot);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      upstreams.inFlight.release(backend.slot);
    };
    const upstream: Socket = backend.tls
      ? tlsConnect({ host: backend.address, port: backend.port, ...upstreamTlsOptions(backend.tls) })
      : connect({ host: backend.address, port: backend.port });
    current = upstream;
    let connected = false;
    upstream.once('close', () => {
      release();
      if (connected) client.end();
    });
    upstream.setTimeout(options.connectTimeoutMs, () =>
      upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'CONNECT_TIMEOUT' })),
    );
    // A TLS backend is connected once its certificate verified.
    upstream.once(backend.tls ? 'secureConnect' : 'connect', () => {
      connected = true;
      upstream.setTimeout(0);
      upstream.write(`${lines}\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.once('data', (first: Buffer) => {
        // The status line, for the log: `HTTP/1.1 101 …`.
        const status = Number(first.toString('latin1', 9, 12));
        if (Number.isInteger(status) && status >= 100) outcome.status = outcome.upstreamStatus = status;
      });
      upstream.on('data', (chunk: Buffer) => (outcome.bytesSent += chunk.length));
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.once('error', (error: NodeJS.ErrnoException) => {
      const code =
        error.code === undefined ? 'UPSTREAM_ERROR' : isTlsFailure(error.code) ? UPSTREAM_TLS_FAILED : error.code;
      options.onError(backend.id, code);
      outcome.error = code;
      if (connected) {
        client.destroy();
        return;
      }
      // Nothing was sent to this backend before it connected: another may take the upgrade.
      const step = afterFailure({
        code,
        retries: outcome.attempts - 1,
        hasBody: false,
        bodyHeld: true,
        answered: false,
        reused: false,
        staleRetried: false,
      });
      if (step.passive) upstreams.noteFailure(backend.id, code);
      if (step.next === 'next-backend') return attempt(upstreams.pick(req, tried));
      answer(step.status, failureStatusText(step.status), code);
    });
  };
  attempt(upstreams.pick(req));
}
