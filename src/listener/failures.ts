/**
 * Why a request failed, as one typed value for every engine (Pingora's
 * `pingora-error` keeps the same three fields): the code (the access log's
 * `error`, the `code` of `upstream error` log lines, docs/errors.md), which
 * side failed, and whether another backend may take the request. Retries
 * ask the failure (`retryable`), never a list of their own, so the exchange
 * and the upgrade tunnel cannot drift apart on it.
 */
import { UPSTREAM_TLS_FAILED } from '../tls/upstream-tls.ts';

export type FailureSource = 'upstream' | 'downstream' | 'internal';

export interface RequestFailure {
  readonly code: string;
  readonly source: FailureSource;
  /** Nothing of the request can have been processed: another backend may take it. */
  readonly retryable: boolean;
  /** Counts against the backend for passive health (it could not be reached or did not answer). */
  readonly passive: boolean;
}

const entry = (source: FailureSource, retryable: boolean, passive: boolean, text: string) => ({
  source,
  retryable,
  passive,
  text,
});

/** Every code sluice gives a failed request. The system's errno codes are kept as they are. */
export const requestFailureCodes = {
  ECONNREFUSED: entry('upstream', true, true, 'The backend refused the connection.'),
  ECONNRESET: entry('upstream', true, true, 'The backend reset the connection before answering.'),
  EPIPE: entry('upstream', true, true, 'The backend closed the connection while the request was written.'),
  EHOSTUNREACH: entry('upstream', true, true, 'No route to the backend host.'),
  ENETUNREACH: entry('upstream', true, true, 'No route to the backend network.'),
  ETIMEDOUT: entry('upstream', false, true, 'The operating system timed the connection out.'),
  CONNECT_TIMEOUT: entry('upstream', true, true, 'No connection within upstream_connect_timeout_ms.'),
  UPSTREAM_CLOSED: entry('upstream', true, true, 'The backend closed the connection before its response was complete.'),
  UPSTREAM_TIMEOUT: entry(
    'upstream',
    false,
    true,
    'The backend was silent for upstream_timeout_ms (504 before a response).',
  ),
  INVALID_RESPONSE: entry(
    'upstream',
    false,
    false,
    'The backend sent a response that is not valid HTTP/1.1 (502; `reason` says what).',
  ),
  // Nothing was sent before the handshake failed: another backend may take the request.
  [UPSTREAM_TLS_FAILED]: entry(
    'upstream',
    true,
    true,
    'TLS to the backend failed: its certificate did not verify (CA, name, expiry) or the handshake failed (502).',
  ),
  UPSTREAM_ERROR: entry('upstream', false, false, 'Any other error on the upstream connection.'),
  NO_SELECTABLE_BACKEND: entry('upstream', false, false, 'The route\u2019s upstream has no backend to try (502).'),
  NO_BACKENDS: entry(
    'internal',
    false,
    false,
    'The route\u2019s upstream has no backends at all (503 with Retry-After).',
  ),
  NO_ROUTE: entry('internal', false, false, 'No route matches the request (404).'),
  LOOP_DETECTED: entry('downstream', false, false, 'The request already passed through this sluice (Via; 508).'),
  INVALID_REQUEST_BODY: entry(
    'downstream',
    false,
    false,
    'The client\u2019s body broke its framing or ended early (400).',
  ),
  CLIENT_ABORTED: entry(
    'downstream',
    false,
    false,
    'The client went away before the response was complete (499 when before it started).',
  ),
  SLUICE_HOOK_FAILED: entry('internal', false, false, 'A request hook threw (500).'),
  INVALID_REQUEST: entry(
    'downstream',
    false,
    false,
    'The request is not valid HTTP/1.1 (400, or 431 for a head over 16 KiB).',
  ),
  CLIENT_HEADER_TIMEOUT: entry(
    'downstream',
    false,
    false,
    'The request head was not complete within client_header_timeout_ms (408).',
  ),
  UNSUPPORTED_TRANSFER_CODING: entry(
    'downstream',
    false,
    false,
    'Transfer-Encoding names a coding besides chunked (501).',
  ),
} as const;

export type RequestFailureCode = keyof typeof requestFailureCodes;

export function requestFailure(code: string): RequestFailure {
  const known = (requestFailureCodes as Record<string, (typeof requestFailureCodes)[RequestFailureCode] | undefined>)[
    code
  ];
  return known
    ? { code, source: known.source, retryable: known.retryable, passive: known.passive }
    : { code, source: 'upstream', retryable: false, passive: false };
}

/**
 * A reused keep-alive connection the backend had just closed fails like
 * this, before any response byte: the keep-alive race, not the backend
 * failing, so the request is sent once more on a fresh connection.
 */
export const isStaleConnection = (code: string): boolean =>
  code === 'ECONNRESET' || code === 'EPIPE' || code === 'UPSTREAM_CLOSED';
