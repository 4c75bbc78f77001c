/**
 * Header rewriting between client and upstream (RFC 9110 §7.6): hop-by-hop
 * headers are dropped in one pass, including every header `Connection` names;
 * the client address is appended to X-Forwarded-For; Via marks the hop.
 */
export const VIA = '1.1 sluice';

export const HOP_BY_HOP_NAMES = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
] as const;
// Node's server already answered `Expect: 100-continue`; the upstream must not be asked again.
export const REQUEST_ONLY_DROPPED_NAMES = ['expect'] as const;
const HOP_BY_HOP = new Set<string>(HOP_BY_HOP_NAMES);
const REQUEST_ONLY_DROPPED = new Set<string>(REQUEST_ONLY_DROPPED_NAMES);

/**
 * Headers `Connection` may never remove: the message's framing and its
 * target. `Connection: content-length` would otherwise drop the length of a
 * body still forwarded, and the upstream would read the body as the next
 * request (request smuggling).
 */
const NEVER_CONNECTION_NAMED = new Set(['content-length', 'transfer-encoding', 'host']);

function connectionTokens(rawHeaders: readonly string[]): Set<string> {
  const tokens = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== 'connection') continue;
    for (const token of rawHeaders[i + 1]!.split(',')) {
      const name = token.trim().toLowerCase();
      if (!NEVER_CONNECTION_NAMED.has(name)) tokens.add(name);
    }
  }
  return tokens;
}

export interface ForwardedFor {
  clientIp: string;
  proto: 'http' | 'https';
}

/** Flat `[name, value, …]` for the upstream request, in the client's order and case. */
export function upstreamRequestHeaders(rawHeaders: readonly string[], forwarded: ForwardedFor): string[] {
  const named = connectionTokens(rawHeaders);
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let via: string | undefined;
  let hasProto = false;
  let hasForwardedHost = false;
  let host: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || REQUEST_ONLY_DROPPED.has(lower) || named.has(lower)) continue;
    if (lower === 'x-forwarded-for') {
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
      continue;
    }
    if (lower === 'via') {
      via = via === undefined ? value : `${via}, ${value}`;
      continue;
    }
    if (lower === 'x-forwarded-proto') hasProto = true;
    if (lower === 'x-forwarded-host') hasForwardedHost = true;
    if (lower === 'host') host = value;
    out.push(name, value);
  }
  out.push(
    'x-forwarded-for',
    forwardedFor === undefined ? forwarded.clientIp : `${forwardedFor}, ${forwarded.clientIp}`,
  );
  if (!hasProto) out.push('x-forwarded-proto', forwarded.proto);
  if (!hasForwardedHost && host !== undefined) out.push('x-forwarded-host', host);
  out.push('via', via === undefined ? VIA : `${via}, ${VIA}`);
  return out;
}

/** True when the request already passed through a sluice: forwarding it again would loop. */
export function isLoop(rawHeaders: readonly string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== 'via') continue;
    if (rawHeaders[i + 1]!.split(',').some((hop) => hop.trim().toLowerCase() === VIA)) return true;
  }
  return false;
}

/** Response headers for the client: hop-by-hop ones dropped, Node re-frames the body. */
export function clientResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const named = new Set<string>();
  const connection = headers['connection'];
  if (connection !== undefined) {
    for (const token of String(connection).split(',')) named.add(token.trim().toLowerCase());
  }
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * The fast path's response headers for the client, flat `[name, value, …]`:
 * the same rule as `clientResponseHeaders` (hop-by-hop ones and those
 * `Connection` names dropped), in the upstream's order and case.
 */
export function clientResponseRawHeaders(rawHeaders: readonly string[]): string[] {
  const named = connectionTokens(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i]!.toLowerCase();
    if (HOP_BY_HOP.has(lower) || named.has(lower)) continue;
    out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return out;
}

/** What X-Forwarded-Proto says for a client socket: `https` when TLS decrypted it. */
export function protoOf(socket: object): 'http' | 'https' {
  return (socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
}
