/**
 * Framing rules the Node path applies before a request goes anywhere
 * (the fast path hands off every request these concern).
 *
 * - A transfer coding besides `chunked` (`gzip, chunked`) would be
 *   forwarded as plain chunked with the coding silently dropped: answer 501,
 *   as nginx does (RFC 9112 §6.1: a server that does not understand a
 *   coding responds 501 and closes).
 * - An HTTP/1.0 request whose body is chunked cannot be framed by an
 *   HTTP/1.0 peer: keep-alive after it is unsafe, so the connection closes
 *   after the response (RFC 9112 §6.1), whatever `Connection` says.
 */
import type { IncomingMessage } from 'node:http';

/** True when `Transfer-Encoding` names any coding other than `chunked`. */
export function hasUnsupportedCoding(req: IncomingMessage): boolean {
  const value = req.headers['transfer-encoding'];
  if (value === undefined) return false;
  for (const coding of value.split(',')) if (coding.trim().toLowerCase() !== 'chunked') return true;
  return false;
}

/** An HTTP/1.0 request with a chunked body: its connection must close after the response. */
export function mustCloseAfter(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 1 && req.httpVersionMinor === 0 && req.headers['transfer-encoding'] !== undefined;
}
