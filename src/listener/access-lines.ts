/**
 * The access-log line of a request, put together in one place for every
 * engine: what the request itself said (read as it arrives, from the fast
 * path's head or Node's message) and what became of it.
 */
import type { IncomingMessage } from 'node:http';
import type { AccessRecord } from '../access-log/record.ts';
import type { RequestHead } from './http1/request-head.ts';

/** What a line says of the request itself. */
export type RequestSide = Pick<
  AccessRecord,
  'remote_addr' | 'method' | 'path' | 'protocol' | 'host' | 'user_agent' | 'referer'
>;

/** What became of it. */
export type Outcome = Omit<AccessRecord, 'time' | 'pid' | 'thread' | keyof RequestSide>;

/** From the fast path's head: call while the read that brought it is handled (its bytes may be reused after). */
export function headSide(head: RequestHead, clientIp: string): RequestSide {
  return {
    remote_addr: clientIp,
    method: head.method,
    path: head.target,
    protocol: 'HTTP/1.1',
    host: head.host ?? null,
    user_agent: head.find('user-agent') ?? null,
    referer: head.find('referer') ?? null,
  };
}

/** From Node's message; without one (a request its parser refused), what was asked is unknown: `-`. */
export function messageSide(req: IncomingMessage | undefined, remoteAddress: string | undefined): RequestSide {
  const header = (name: string) => {
    const value = req?.headers[name];
    return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
  };
  return {
    remote_addr: remoteAddress ?? '',
    method: req?.method ?? '-',
    path: req?.url ?? '-',
    protocol: req ? `HTTP/${req.httpVersion}` : '-',
    host: header('host'),
    user_agent: header('user-agent'),
    referer: header('referer'),
  };
}

/** Field by field, not by spreading: one object shape for every line, which the formatter's reads stay fast on. */
export function accessLine(time: number, thread: number, request: RequestSide, outcome: Outcome): AccessRecord {
  return {
    time,
    pid: process.pid,
    thread,
    remote_addr: request.remote_addr,
    method: request.method,
    path: request.path,
    protocol: request.protocol,
    host: request.host,
    status: outcome.status,
    bytes_sent: outcome.bytes_sent,
    duration_ms: outcome.duration_ms,
    route: outcome.route,
    upstream: outcome.upstream,
    backend: outcome.backend,
    upstream_status: outcome.upstream_status,
    attempts: outcome.attempts,
    error: outcome.error,
    request_id: outcome.request_id,
    user_agent: request.user_agent,
    referer: request.referer,
  };
}
