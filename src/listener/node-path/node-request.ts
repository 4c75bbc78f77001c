/**
 * A request that Node's server parsed, served by the core: the same
 * Exchange as the fast path's, fed from Node's request and answering
 * through Node's response. What differs is settled here: the head is
 * written back in canonical form (canonical-head.ts), and a body whose
 * length is unknown (chunked, or an HTTP/2 stream without content-length)
 * is framed chunked again, since llhttp and HTTP/2 hand over its bytes
 * without their framing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestSide } from '../access-lines.ts';
import { Exchange, type ClientStream, type FastPathContext } from '../http1/exchange.ts';
import type { Forwarding } from '../http1/rewrite.ts';
import type { RequestId } from '../request-id.ts';
import type { Route } from '../../routing/route-table.ts';
import type { Upstreams } from '../upstreams.ts';
import { canonicalHead } from './canonical-head.ts';
import { NodeResponse } from './node-response.ts';
import { mayTrail } from './trailer-fields.ts';

const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
/** The last chunk, carrying the request's trailers (HTTP/2 and chunked HTTP/1.1 requests may have some). */
function lastChunk(rawTrailers: readonly string[]): Buffer {
  let lines = '';
  for (let i = 0; i < rawTrailers.length; i += 2) {
    const name = rawTrailers[i]!;
    if (mayTrail(name.toLowerCase())) lines += `${name}: ${rawTrailers[i + 1]!}\r\n`;
  }
  return lines === '' ? LAST_CHUNK : Buffer.from(`0\r\n${lines}\r\n`, 'latin1');
}

/** Node's request and response as the exchange's client connection: flow control on the request, drain on the response. */
class NodeClient implements ClientStream {
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;

  constructor(req: IncomingMessage, res: ServerResponse) {
    this.#req = req;
    this.#res = res;
  }

  get remoteAddress(): string | undefined {
    return this.#req.socket.remoteAddress;
  }
  get writableLength(): number {
    return this.#res.writableLength;
  }
  /** The exchange writes through NodeResponse on this path; a raw write would be a bug in exchange.ts. */
  write(): boolean {
    throw new Error('exchange: raw bytes written to a Node response');
  }
  cork(): void {
    this.#res.cork();
  }
  uncork(): void {
    this.#res.uncork();
  }
  pause(): void {
    this.#req.pause();
  }
  resume(): void {
    this.#req.resume();
  }
  isPaused(): boolean {
    return this.#req.isPaused();
  }
  once(event: 'drain', listener: () => void): void {
    this.#res.once(event, listener);
  }
  off(event: 'drain', listener: () => void): void {
    this.#res.off(event, listener);
  }
  destroy(): void {
    this.#res.destroy();
  }
}

export interface NodeRequestPlan {
  decision: { upstreams: Upstreams; route: Route | undefined };
  forwarding: Forwarding;
  id: RequestId | undefined;
  request: RequestSide;
  /** The connection closes after this response (RFC 9112 §6.1, a drain). */
  close: boolean;
  maxHeadBytes: number;
  /** The exchanges in progress, whose upstream deadlines the thread's sweep checks. */
  inProgress: Set<Exchange>;
}

/** An HTTP/2 request whose stream the client reset (RST_STREAM): Node's compatibility request ends then. */
function resetByClient(req: IncomingMessage): boolean {
  const stream = (req as { stream?: { aborted?: boolean; rstCode?: number } }).stream;
  return stream !== undefined && (stream.aborted === true || (stream.rstCode ?? 0) !== 0);
}

/** Serves `req` through the core; undefined when its head cannot be written canonically (the caller answers 400). */
export function serveThroughCore(
  ctx: FastPathContext,
  req: IncomingMessage,
  res: ServerResponse,
  plan: NodeRequestPlan,
): Exchange | undefined {
  const head = canonicalHead(req, plan.close, plan.maxHeadBytes);
  if (!head) return undefined;
  const response = new NodeResponse(res, req.httpVersionMajor === 2);
  const node = { response, id: plan.id, request: plan.request };
  const exchange = new Exchange(
    ctx,
    new NodeClient(req, res),
    plan.forwarding,
    head,
    plan.decision,
    () => plan.inProgress.delete(exchange),
    node,
  );
  plan.inProgress.add(exchange);
  // The client went away before the response was whole (an HTTP/2 reset finishes the response as it closes it).
  res.once('close', () => {
    if (!exchange.done) exchange.clientClosed();
  });
  exchange.start();
  if (head.contentLength === 0 && !head.chunked) return exchange;
  const chunked = head.chunked;
  req.on('data', (data: Buffer) => {
    if (!chunked) return exchange.clientBody(data);
    // An empty piece would be read upstream as the last chunk.
    if (data.length === 0) return;
    exchange.clientBody(Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`, 'latin1'), data, CRLF]));
  });
  req.once('end', () => {
    // An HTTP/2 stream the client reset ends its body too: cut short, it must not go up as a whole one.
    if (resetByClient(req)) return exchange.clientClosed();
    if (chunked) exchange.clientBody(lastChunk(req.rawTrailers));
    exchange.clientBodyDone();
  });
  return exchange;
}
