/**
 * One probe of one backend, bounded by `timeoutMs`. A probe never throws:
 * it resolves to pass/fail with a short reason for the flip log line.
 * A backend with `tls` is probed over TLS, verified as requests are: a
 * certificate that does not verify fails the probe (`SLUICE_UPSTREAM_TLS`).
 */
import { connect, type Socket } from 'node:net';
import { request, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import type { UpstreamTls } from '../protocol.ts';
import { isTlsFailure, UPSTREAM_TLS_FAILED, upstreamTlsOptions } from '../tls/upstream-tls.ts';

export interface ProbeResult {
  passed: boolean;
  /** `status 200`, `timeout`, `ECONNREFUSED`… */
  reason: string;
}

export interface ProbeTarget {
  address: string;
  port: number;
  tls?: UpstreamTls | null;
}

/** Why a probe failed: the system's code, or SLUICE_UPSTREAM_TLS with OpenSSL's. */
function failureReason(error: NodeJS.ErrnoException): string {
  const code = error.code ?? error.message;
  return isTlsFailure(code) ? `${UPSTREAM_TLS_FAILED} (${code})` : code;
}

/** Passes once connected (over TLS: once the handshake verified the certificate). */
export function tcpProbe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let socket: Socket;
    try {
      socket = target.tls
        ? tlsConnect({ host: target.address, port: target.port, ...upstreamTlsOptions(target.tls) })
        : connect({ host: target.address, port: target.port });
    } catch (error) {
      resolve({ passed: false, reason: `${UPSTREAM_TLS_FAILED} (${(error as Error).message})` });
      return;
    }
    const finish = (result: ProbeResult) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ passed: false, reason: 'timeout' }), timeoutMs);
    socket.once(target.tls ? 'secureConnect' : 'connect', () => finish({ passed: true, reason: 'connected' }));
    socket.once('error', (error: NodeJS.ErrnoException) => finish({ passed: false, reason: failureReason(error) }));
  });
}

export interface HttpProbeOptions {
  path: string;
  timeoutMs: number;
  /** Host header to send; the backend's address:port when null. */
  host: string | null;
  accepts: (status: number) => boolean;
}

/**
 * With node:http, not undici: the checker thread then loads no HTTP client
 * library at all (undici costs a thread ~7 MB). A fresh connection per
 * probe (no agent, `Connection: close`), as HAProxy's checks.
 */
export function httpProbe(target: ProbeTarget, options: HttpProbeOptions): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(result);
    };
    const common = {
      host: target.address,
      port: target.port,
      path: options.path,
      method: 'GET',
      agent: false,
      headers: { host: options.host ?? hostHeader(target), connection: 'close' },
    } as const;
    let req: ClientRequest;
    try {
      req = target.tls ? httpsRequest({ ...common, ...upstreamTlsOptions(target.tls) }) : request(common);
    } catch (error) {
      settled = true;
      resolve({ passed: false, reason: `${UPSTREAM_TLS_FAILED} (${(error as Error).message})` });
      return;
    }
    const timer = setTimeout(() => finish({ passed: false, reason: 'timeout' }), options.timeoutMs);
    req.once('response', (res) => {
      const status = res.statusCode ?? 0;
      // The body is read to its end, as a real client would, within the same deadline.
      res.resume();
      res.once('end', () => finish({ passed: options.accepts(status), reason: `status ${status}` }));
      res.once('error', (error: NodeJS.ErrnoException) =>
        finish({ passed: false, reason: error.code ?? error.message }),
      );
      // Closed before its end (no effect after 'end', which comes first).
      res.once('close', () => finish({ passed: false, reason: 'ECONNRESET' }));
    });
    req.once('error', (error: NodeJS.ErrnoException) => finish({ passed: false, reason: failureReason(error) }));
    req.end();
  });
}

/** `address:port`, bracketed for IPv6: what undici sent when no `host` is configured. */
function hostHeader(target: ProbeTarget): string {
  return `${target.address.includes(':') ? `[${target.address}]` : target.address}:${target.port}`;
}
