/**
 * What a request hook hands back before it goes into a head written as
 * bytes: names and values as Node's own http checks them (no CR or LF,
 * nothing above U+00FF, which latin1 would turn into a CR or LF byte), a
 * status a response can have, a string body. The framing and connection
 * headers are the proxy's: a hook's are dropped and the message's own put
 * back, so no hook can make a body be read as the next message. A hook
 * that breaks these rules fails like a hook that throws (500).
 */
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { PROTECTED_HEADERS } from '../config/limits.ts';
import type { OwnAnswer } from './own-answers.ts';

const FRAMING = new Set<string>(PROTECTED_HEADERS);

/** `[name, value, …]` from a hook: checked, without framing or connection headers. Throws on an invalid one. */
export function hookHeaderLines(flat: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!;
    const value = flat[i + 1]!;
    validateHeaderName(name);
    validateHeaderValue(name, value);
    if (!FRAMING.has(name.toLowerCase())) out.push(name, value);
  }
  return out;
}

/** requestFilter's `respond`, checked, as the proxy's own answer. Throws when it is not one a response can be. */
export function hookAnswer(respond: { status: unknown; headers?: unknown; body?: unknown }): OwnAnswer {
  const { status, headers = {}, body = '' } = respond;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
    throw new TypeError(`respond.status must be an integer from 200 to 599 (got ${String(status)})`);
  }
  if (typeof body !== 'string') throw new TypeError('respond.body must be a string');
  if (typeof headers !== 'object' || headers === null) throw new TypeError('respond.headers must be an object');
  const flat = Object.entries(headers as Record<string, unknown>).flatMap(([name, value]) => [name, String(value)]);
  const lines = hookHeaderLines(flat);
  const pairs: (readonly [string, string])[] = [];
  for (let i = 0; i < lines.length; i += 2) pairs.push([lines[i]!.toLowerCase(), lines[i + 1]!] as const);
  return { status, code: null, headers: pairs, body };
}
