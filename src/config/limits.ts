/** Config limits that code outside the schema needs too, free of zod (the worker threads import them). */

/**
 * Headers no route, hook or request-id setting may set or remove: the message's framing and the
 * connection's. sluice writes them itself; a route that changed them could
 * make the upstream or the client read a body as the next message.
 */
export const PROTECTED_HEADERS = [
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
] as const;

/** The refresh interval's floor: below it a resolver would mostly measure its DNS server. */
export const MIN_DNS_REFRESH_MS = 1000;
