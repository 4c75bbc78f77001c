/**
 * The key consistent hashing uses for a request: `client_ip`, `path`
 * (without the query), `header:NAME` or `cookie:NAME`. A missing header or
 * cookie hashes as the empty key, so such requests still go somewhere stable.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** What a hash key is read from: an IncomingMessage, or the fast path's request head. */
export interface KeyedRequest {
  url?: string;
  headers: IncomingHttpHeaders;
  socket: { remoteAddress?: string };
}

export type KeyOf = (req: KeyedRequest) => string;

function cookieValue(header: string | undefined, name: string): string {
  if (!header) return '';
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return '';
}

export function hashKeyReader(hashKey: string): KeyOf {
  if (hashKey === 'client_ip') return (req) => req.socket.remoteAddress ?? '';
  if (hashKey === 'path') return (req) => (req.url ?? '/').split('?', 1)[0]!;
  const [kind, name] = [hashKey.slice(0, hashKey.indexOf(':')), hashKey.slice(hashKey.indexOf(':') + 1)];
  if (kind === 'header') {
    const lower = name.toLowerCase();
    return (req) => {
      const value = req.headers[lower];
      return Array.isArray(value) ? value.join(',') : (value ?? '');
    };
  }
  return (req) => cookieValue(req.headers.cookie, name);
}
