/**
 * A request that Node's parser (llhttp) read, written back as the head the
 * fast path's codec reads, so that it goes through the same core
 * (exchange.ts): the same upstream head, routes, hooks, retries and log.
 *
 * The head is canonical: HTTP/1.1 (the upstream side always is), an
 * origin-form target, one Host, and a framing the core can forward. llhttp
 * has decoded a chunked body, and HTTP/2 frames bodies itself, so a body of
 * unknown length goes up chunked again (node-request.ts frames it). The
 * hop-by-hop fields that make the codec hand a request over (Expect, TE,
 * Keep-Alive, Proxy-Connection, HTTP2-Settings; Node has answered Expect's
 * 100 already) are dropped here, as they would be on the way up anyway.
 */
import type { IncomingMessage } from 'node:http';
import { originForm } from '../../routing/origin-form.ts';
import { parseRequestHead, type RequestHead } from '../http1/request-head.ts';

const DROPPED = new Set([
  'expect',
  'te',
  'keep-alive',
  'proxy-connection',
  'http2-settings',
  'upgrade',
  'transfer-encoding',
  'content-length',
  'host',
]);

/** The canonical head; undefined when it cannot be one (no Host to give, several Hosts, an asterisk-form target). */
export function canonicalHead(req: IncomingMessage, close: boolean, maxHeadBytes: number): RequestHead | undefined {
  const target = originForm(req.url ?? '/');
  if (target.charCodeAt(0) !== 0x2f) return undefined;
  const raw = req.rawHeaders;
  let host: string | undefined;
  let text = `${req.method ?? 'GET'} ${target} HTTP/1.1\r\n`;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === 'host') {
      // RFC 9112 §3.2: a request with more than one Host is answered 400.
      if (host !== undefined) return undefined;
      host = raw[i + 1]!;
      continue;
    }
    if (!DROPPED.has(lower)) text += `${name}: ${raw[i + 1]!}\r\n`;
  }
  // HTTP/1.0 may omit Host; the upstream needs one: the address the client reached.
  host ??= hostOf(req);
  if (host === undefined) return undefined;
  text = text.replace('\r\n', `\r\nHost: ${host}\r\n`);
  const length = req.headers['content-length'];
  if (length !== undefined) text += `Content-Length: ${length}\r\n`;
  else if (req.headers['transfer-encoding'] !== undefined) text += 'Transfer-Encoding: chunked\r\n';
  // Beside the client's own Connection, whose other names must still be dropped on the way up.
  if (close) text += 'Connection: close\r\n';
  const parsed = parseRequestHead(Buffer.from(`${text}\r\n`, 'latin1'), 2 * maxHeadBytes, true);
  return parsed.kind === 'ok' ? parsed.head : undefined;
}

function hostOf(req: IncomingMessage): string | undefined {
  const { localAddress, localPort } = req.socket;
  if (localAddress === undefined || localPort === undefined) return undefined;
  return localAddress.includes(':') ? `[${localAddress}]:${localPort}` : `${localAddress}:${localPort}`;
}
