/**
 * What happens after an upstream attempt failed before any byte of a
 * response reached the client: the one retry rule of every engine (the fast
 * path, the Node path, upgrades), so that whether a request is retried never
 * depends on which engine carried it.
 *
 * As Envoy's `retry_on: connect-failure,reset` with `num_retries: 2` and
 * Pingora's `fail_to_connect` retries: another backend may take a request
 * only while nothing it sent can have been acted on, that is, when the
 * failure says so (`retryable` in failures.ts) and every byte the backend was
 * given can be given again. A reused keep-alive connection that the backend
 * had just closed is the keep-alive race, not a failing backend: once, on a
 * fresh connection to the same backend, and not held against it.
 */
import { isStaleConnection, requestFailure } from './failures.ts';

/** Retries on another backend, after the first attempt. */
export const MAX_RETRIES = 2;

export interface FailedAttempt {
  /** The failure's code (failures.ts). */
  readonly code: string;
  /** Retries on another backend made so far. */
  readonly retries: number;
  readonly hasBody: boolean;
  /** Every body byte sent so far is still held, so the body can be sent again from its start. */
  readonly bodyHeld: boolean;
  /** Some of the backend's response had arrived. */
  readonly answered: boolean;
  /** The connection had carried an earlier request. */
  readonly reused: boolean;
  /** The keep-alive race was already retried once for this request. */
  readonly staleRetried: boolean;
}

export interface NextStep {
  readonly next: 'same-backend' | 'next-backend' | 'answer';
  /** The proxy's own answer when `next` is 'answer' (or no other backend is left). */
  readonly status: 502 | 504;
  /** Counted against the backend by passive health. */
  readonly passive: boolean;
}

export function afterFailure(attempt: FailedAttempt): NextStep {
  const { code, answered } = attempt;
  const failure = requestFailure(code);
  const status = code === 'UPSTREAM_TIMEOUT' ? 504 : 502;
  if (!answered && !attempt.hasBody && attempt.reused && !attempt.staleRetried && isStaleConnection(code)) {
    return { next: 'same-backend', status, passive: false };
  }
  const replayable = !attempt.hasBody || attempt.bodyHeld;
  const next =
    !answered && replayable && failure.retryable && attempt.retries < MAX_RETRIES ? 'next-backend' : 'answer';
  return { next, status, passive: failure.passive };
}

/** The status line's text of the proxy's answers after a failed attempt. */
export const failureStatusText = (status: 502 | 504): string => (status === 504 ? 'Gateway Timeout' : 'Bad Gateway');
