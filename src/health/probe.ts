/**
 * One probe of one backend, bounded by `timeoutMs`. A probe never throws:
 * it resolves to pass/fail with a short reason for the flip log line.
 */
import { connect } from 'node:net';
import { request } from 'node:http';

export interface ProbeResult {
  passed: boolean;
  /** `status 200`, `timeout`, `ECONNREFUSED`… */
  reason: string;
}

export interface ProbeTarget {
  address: string;
  port: number;
}

export function tcpProbe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: target.address, port: target.port });
    const finish = (result: ProbeResult) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ passed: false, reason: 'timeout' }), timeoutMs);
    socket.once('connect', () => finish({ passed: true, reason: 'connected' }));
    socket.once('error', (error: NodeJS.ErrnoException) =>
      finish({ passed: false, reason: error.code ?? error.message }),
    );
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
    const req = request({
      host: target.address,
      port: target.port,
      path: options.path,
      method: 'GET',
      agent: false,
      headers: { host: options.host ?? hostHeader(target), connection: 'close' },
    });
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
    req.once('error', (error: NodeJS.ErrnoException) => finish({ passed: false, reason: error.code ?? error.message }));
    req.end();
  });
}

/** `address:port`, bracketed for IPv6: what undici sent when no `host` is configured. */
function hostHeader(target: ProbeTarget): string {
  return `${target.address.includes(':') ? `[${target.address}]` : target.address}:${target.port}`;
}
