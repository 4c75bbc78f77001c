/**
 * What a stored entry says of its response, and the response head a hit is
 * served with. The upstream's headers are kept as it sent them, less the
 * hop-by-hop ones, Age (computed at each hit) and the framing (the body is
 * stored whole, so a hit says its length; a chunked body is kept as framed).
 */
import { STATUS_CODES } from 'node:http';
import type CachePolicy from 'http-cache-semantics';

export interface EntryMeta {
  /** http-cache-semantics' serialized policy: freshness, validators, Vary. */
  policy: CachePolicy.CachePolicyObject;
  status: number;
  /** Header lines as `[name, value, …]`, without framing, Age or hop-by-hop headers. */
  headers: string[];
  /** `chunked`: the body is kept with its chunked framing (and trailers). */
  framing: 'length' | 'chunked';
}

const NOT_STORED = new Set(['content-length', 'transfer-encoding', 'age', 'connection', 'keep-alive']);

/** The upstream's client-bound header lines as an entry keeps them. */
export function storedHeaders(flat: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2)
    if (!NOT_STORED.has(flat[i]!.toLowerCase())) out.push(flat[i]!, flat[i + 1]!);
  return out;
}

/**
 * The head of a response served from the store, up to the lines the
 * exchange adds itself (request id, Connection, the blank line).
 */
export function cachedHead(
  meta: EntryMeta,
  headers: readonly string[],
  bodyLength: number,
  age: number,
  cacheStatus: string,
): string {
  let text = `HTTP/1.1 ${meta.status} ${STATUS_CODES[meta.status] ?? 'Unknown'}\r\n`;
  for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
  text += `Age: ${age}\r\nCache-Status: ${cacheStatus}\r\n`;
  if (meta.status === 204 || meta.status === 304) return text;
  return text + (meta.framing === 'chunked' ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${bodyLength}\r\n`);
}
