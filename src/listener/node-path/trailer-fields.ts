/**
 * Which fields may travel in a trailer, either way (a client's request
 * trailers going up in the last chunk, an upstream's response trailers
 * going to the client). One rule for both directions: RFC 9110 §6.5.1.
 */

/** Fields HTTP/2 forbids (RFC 9113 §8.2.2); Node throws on them. Never in a trailer either. */
export const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** Framing, routing, authentication, caching and the hop-by-hop fields: a trailer may not carry them. */
const NOT_IN_TRAILERS: ReadonlySet<string> = new Set([
  ...CONNECTION_SPECIFIC,
  'content-length',
  'content-type',
  'content-encoding',
  'content-range',
  'host',
  'te',
  'trailer',
  'authorization',
  'cookie',
  'set-cookie',
  'cache-control',
  'expires',
  'date',
  'location',
  'retry-after',
  'vary',
  'www-authenticate',
]);

/** Whether the field named `lowercaseName` may be passed on in a trailer. */
export const mayTrail = (lowercaseName: string): boolean => !NOT_IN_TRAILERS.has(lowercaseName);
