/**
 * llhttp, the parser behind Node's http server, Node's http client and
 * undici, reached through Node's internal binding: this file only runs in a
 * child process started with `--expose-internals` (see the differential
 * test). Strict mode, as `http.createServer` uses it (no lenient flags).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
/** The part of the binding this file drives; the callback slots are numbers the class names. */
interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(input: Buffer): number | Error;
  finish(): Error | undefined;
  [slot: number]: (...args: never[]) => unknown;
}
interface ParserClass {
  new (): Parser;
  REQUEST: number;
  RESPONSE: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
}

const { internalBinding } = require('internal/test/binding') as { internalBinding: (name: string) => unknown };
const { HTTPParser, methods } = internalBinding('http_parser') as { HTTPParser: ParserClass; methods: string[] };

export interface OracleMessage {
  method?: string;
  url?: string;
  status?: number;
  reason?: string;
  minor: number;
  rawHeaders: string[];
  keepAlive: boolean;
  upgrade: boolean;
  body: Buffer;
}

/** `atEof`: the bytes were fine so far but the message is cut short (a stream would wait for more). */
export type OracleVerdict =
  { ok: true; messages: OracleMessage[]; consumed: number } | { ok: false; error: string; atEof?: boolean };

export function llhttp(
  kind: 'request' | 'response',
  input: Buffer,
  options: { maxHeaderSize?: number; skipBody?: boolean } = {},
): OracleVerdict {
  const parser = new HTTPParser();
  parser.initialize(
    kind === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE,
    {},
    options.maxHeaderSize ?? 16_384,
    0,
  );
  const messages: OracleMessage[] = [];
  let pendingHeaders: string[] = [];
  let current: OracleMessage | undefined;
  let chunks: Buffer[] = [];
  parser[HTTPParser.kOnHeaders] = (headers: string[]) => pendingHeaders.push(...headers);
  parser[HTTPParser.kOnHeadersComplete] = (
    major: number,
    minor: number,
    headers: string[] | undefined,
    method: number | undefined,
    url: string | undefined,
    status: number | undefined,
    reason: string | undefined,
    upgrade: boolean,
    keepAlive: boolean,
  ) => {
    current = {
      ...(method !== undefined && { method: methods[method]! }),
      ...(url !== undefined && { url: url || undefined }),
      ...(status !== undefined && { status }),
      ...(reason !== undefined && { reason }),
      minor: major === 1 ? minor : -1,
      rawHeaders: headers ?? pendingHeaders,
      keepAlive,
      upgrade,
      body: Buffer.alloc(0),
    };
    pendingHeaders = [];
    return options.skipBody ? 1 : 0;
  };
  parser[HTTPParser.kOnBody] = (body: Buffer) => chunks.push(Buffer.from(body));
  parser[HTTPParser.kOnMessageComplete] = () => {
    if (current) messages.push({ ...current, body: Buffer.concat(chunks) });
    current = undefined;
    chunks = [];
  };
  const result = parser.execute(input);
  if (result instanceof Error) return { ok: false, error: (result as Error & { code: string }).code };
  const finished = parser.finish();
  if (finished instanceof Error) return { ok: false, error: (finished as Error & { code: string }).code, atEof: true };
  return { ok: true, messages, consumed: result };
}
