/**
 * An HTTP/2 stream as the forwarding core reads an HTTP/1.1 request, so
 * both go through the same code (server.ts's `#handle`, node-path/): Node's
 * compatibility objects, with the differences the core would trip on
 * settled once, here.
 *
 * - The pseudo-headers leave the header list; `:authority` becomes `Host`
 *   when the client sent none (RFC 9113 §8.3.1), so routing, X-Forwarded-Host
 *   and the upstream see the name the client asked for.
 * - Several `cookie` fields become one, joined with `; ` (RFC 9113 §8.2.3):
 *   an HTTP/1.1 upstream expects a single Cookie header.
 * - A body without `content-length` (HTTP/2 frames it by END_STREAM) is
 *   announced to the core as chunked, in the header map only: the core then
 *   streams it, framed chunked towards the upstream (node-path/node-request.ts).
 * - `Connection` in a response is dropped silently: it means nothing on
 *   HTTP/2 (the drain says GOAWAY instead), and Node warns once for it.
 */
import { Http2ServerRequest, Http2ServerResponse, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { ReadableOptions } from 'node:stream';

export class H1ViewRequest extends Http2ServerRequest {
  constructor(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    options: ReadableOptions,
    rawHeaders: readonly string[],
  ) {
    super(stream, headers, options, rawHeaders);
    const raw: string[] = [];
    const cookies: string[] = [];
    let host = false;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!;
      if (name.startsWith(':')) continue;
      if (name === 'cookie') {
        cookies.push(rawHeaders[i + 1]!);
        continue;
      }
      if (name === 'host') host = true;
      raw.push(name, rawHeaders[i + 1]!);
    }
    const authority = headers[':authority'];
    const map: IncomingHttpHeaders = {};
    if (!host && typeof authority === 'string') {
      raw.unshift('host', authority);
      map.host = authority;
    }
    for (const [name, value] of Object.entries(headers)) if (!name.startsWith(':')) map[name] = value;
    if (cookies.length > 0) {
      raw.push('cookie', cookies.join('; '));
      map.cookie = cookies.join('; ');
    }
    if (!stream.endAfterHeaders && map['content-length'] === undefined) map['transfer-encoding'] = 'chunked';
    // Own properties over Node's prototype getters: `method` and `url` still read the pseudo-headers.
    Object.defineProperty(this, 'headers', { value: map });
    Object.defineProperty(this, 'rawHeaders', { value: raw });
  }
}

export class H1ViewResponse extends Http2ServerResponse {
  override setHeader(name: string, value: number | string | readonly string[]): void {
    if (name.toLowerCase() === 'connection') return;
    super.setHeader(name, value);
  }
}

// Node's overloads: the header object, when there is one, is the last argument.
H1ViewResponse.prototype.writeHead = function (this: H1ViewResponse, ...args: unknown[]) {
  const last = args[args.length - 1];
  if (typeof last === 'object' && last !== null && !Array.isArray(last) && 'connection' in last) {
    const { connection: _dropped, ...rest } = last as Record<string, unknown>;
    args[args.length - 1] = rest;
  }
  return (Http2ServerResponse.prototype.writeHead as (...args: unknown[]) => H1ViewResponse).apply(this, args);
};
