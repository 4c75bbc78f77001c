/**
 * Each request's id (`proxy.request_id_header`, `x-request-id` by default):
 * the client's when it sent one, else a new UUID, which the upstream
 * request then carries. Either way the response carries it back in the same
 * header and the access log records it, so one id follows a request
 * through every hop (as nginx's `$request_id` and Envoy's `x-request-id`).
 */
import { randomUUID } from 'node:crypto';

export interface RequestId {
  /** Lowercase header name. */
  readonly header: string;
  readonly value: string;
  /** The client did not send it: the upstream request must get it. */
  readonly generated: boolean;
}

export function requestIdFrom(header: string, sent: string | undefined): RequestId {
  return sent === undefined || sent === '' ? { header, value: randomUUID(), generated: true } : { header, value: sent, generated: false };
}

/** `name: value\r\n` */
export const idLine = (id: RequestId): string => `${id.header}: ${id.value}\r\n`;
