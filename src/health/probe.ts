/**
 * One probe of one backend, bounded by `timeoutMs`. A probe never throws:
 * it resolves to pass/fail with a short reason for the flip log line.
 */
import { connect } from 'node:net';
import { request } from 'undici';

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
    socket.once('error', (error: NodeJS.ErrnoException) => finish({ passed: false, reason: error.code ?? error.message }));
  });
}

export interface HttpProbeOptions {
  path: string;
  timeoutMs: number;
  /** Host header to send; the backend's address:port when null. */
  host: string | null;
  accepts: (status: number) => boolean;
}

export async function httpProbe(target: ProbeTarget, options: HttpProbeOptions): Promise<ProbeResult> {
  const host = target.address.includes(':') ? `[${target.address}]` : target.address;
  const timeoutMs = options.timeoutMs;
  try {
    const response = await request(`http://${host}:${target.port}${options.path}`, {
      method: 'GET',
      ...(options.host !== null && { headers: { host: options.host } }),
      signal: AbortSignal.timeout(timeoutMs),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      // A health check should see a fresh connection, as HAProxy's do.
      reset: true,
    });
    await response.body.dump();
    const passed = options.accepts(response.statusCode);
    return { passed, reason: `status ${response.statusCode}` };
  } catch (error) {
    const err = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    if (err.name === 'TimeoutError' || err.name === 'AbortError' || err.code === 'UND_ERR_HEADERS_TIMEOUT') {
      return { passed: false, reason: 'timeout' };
    }
    return { passed: false, reason: err.cause?.code ?? err.code ?? err.message };
  }
}
