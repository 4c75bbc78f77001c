/**
 * Forwarding one client request to a backend and streaming the answer back.
 *
 * Bodies stream both ways with backpressure (`relay`, and undici reading
 * the request), and a failure on either side tears down the other. A request whose body cannot
 * have been sent yet (no body) is retried on the next healthy backend when
 * the upstream refuses or resets before answering, at most twice; a reused
 * connection that turns out closed is retried once on the same backend.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { clientResponseHeaders, isLoop, protoOf, upstreamRequestHeaders } from './headers.ts';
import { relay } from './relay.ts';
import type { Upstreams } from './upstreams.ts';
import type { BackendState } from '../protocol.ts';
import type { RequestId } from './request-id.ts';
import { plainAnswer, sendOwnAnswer } from './own-answers.ts';
import { fromUndici, isStaleConnection, requestFailure } from './failures.ts';
import { originForm } from '../routing/origin-form.ts';
import { editFlatHeaders, editHeaderMap, targetAfterStrip, type Route } from '../routing/route-table.ts';

const MAX_RETRIES = 2;

/** Where per-request hooks plug into forwarding; all optional, absent unless a hooks module is loaded. */
export interface ForwardHooks {
  /** The backend for the first attempt; undefined leaves it to the balancer. */
  choosePeer?: () => Promise<BackendState | undefined>;
  editRequestHeaders?: (headers: string[]) => Promise<string[]>;
  editResponseHeaders?: (headers: Record<string, string | string[]>) => Promise<void>;
  /** The backend whose response is being sent. */
  onBackend?: (backend: BackendState) => void;
}

/** What every request of a listener shares. */
export interface ForwardBase {
  /** While draining, every response announces `Connection: close`. */
  isDraining: () => boolean;
  onUpstreamError: (error: { backend: string; code: string; reason?: string }) => void;
}

/** What the access log records of a forwarded request, filled in as it goes. */
export interface ForwardOutcome {
  backend: string | null;
  upstreamStatus: number | null;
  attempts: number;
  error: string | null;
  /** Response body bytes sent to the client. */
  bodyBytes: number;
}

/** One request's: the upstream its route chose, the route's edits, its id, the hooks. */
export interface ForwardContext extends ForwardBase {
  upstreams: Upstreams;
  route: Route | undefined;
  requestId: RequestId | undefined;
  outcome: ForwardOutcome;
  hooks?: ForwardHooks;
}

/** sluice's code for an error of undici or of a socket (failures.ts). */
function errorCode(error: unknown): string {
  const err = error as { code?: string; cause?: { code?: string } };
  return fromUndici(err.cause?.code ?? err.code ?? 'UPSTREAM_ERROR');
}

/** A plain-text answer of the proxy's own (the Node path's twin of `ownAnswerBytes`). */
export function sendPlain(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}, close = false): void {
  sendOwnAnswer(res, plainAnswer(status, text, null), close, extra);
}

/** The proxy's own answer on this path, its body counted for the access log. */
function answerPlain(outcome: ForwardOutcome, res: ServerResponse, status: number, text: string, extra: Record<string, string>, close: boolean): void {
  outcome.bodyBytes = Buffer.byteLength(text) + 1;
  sendPlain(res, status, text, extra, close);
}

const hasBody = (req: IncomingMessage) =>
  req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

/** Resolves, once the response is sent, with the backend that answered (undefined: the proxy answered). */
export async function forward(req: IncomingMessage, res: ServerResponse, ctx: ForwardContext): Promise<string | undefined> {
  const draining = ctx.isDraining();
  const outcome = ctx.outcome;
  if (isLoop(req.rawHeaders)) {
    outcome.error = 'LOOP_DETECTED';
    return void answerPlain(outcome, res, 508, 'Loop Detected', {}, draining);
  }

  const withBody = hasBody(req);
  const hooks = ctx.hooks;
  const route = ctx.route;
  let headers = upstreamRequestHeaders(req.rawHeaders, { clientIp: req.socket.remoteAddress ?? '', proto: protoOf(req.socket) });
  if (route?.requestHeaders) headers = editFlatHeaders(headers, route.requestHeaders);
  const id = ctx.requestId;
  if (id?.generated) headers.push(id.header, id.value);
  const path = route?.stripPrefix ? targetAfterStrip(originForm(req.url ?? '/'), route.stripPrefix) : (req.url ?? '/');
  if (hooks?.editRequestHeaders) headers = await hooks.editRequestHeaders(headers);
  const tried = new Set<string>();
  let retrySame: BackendState | undefined;
  let staleRetried = false;

  for (let attempt = 0; attempt <= MAX_RETRIES; attempt++) {
    const chosen = attempt === 0 && hooks?.choosePeer ? await hooks.choosePeer() : undefined;
    const backend = retrySame ?? chosen ?? ctx.upstreams.pick(req, tried);
    retrySame = undefined;
    if (!backend) break;
    tried.add(backend.id);
    outcome.backend = backend.id;
    outcome.attempts++;
    const inFlight = ctx.upstreams.inFlight;
    inFlight.acquire(backend.slot);
    try {
      let response: Dispatcher.ResponseData;
      try {
        response = await ctx.upstreams.poolFor(backend).request({
          path,
          method: req.method as Dispatcher.HttpMethod,
          headers,
          body: withBody ? req : null,
        });
      } catch (error) {
        const code = errorCode(error);
        outcome.error = code;
        ctx.onUpstreamError({ backend: backend.id, code });
        if (!withBody && !staleRetried && isStaleConnection(code)) {
          staleRetried = true;
          retrySame = backend;
          continue;
        }
        const failure = requestFailure(code);
        if (failure.passive) ctx.upstreams.noteFailure(backend.id, code);
        if (code === 'UPSTREAM_TIMEOUT') {
          return void answerPlain(outcome, res, 504, 'Gateway Timeout', {}, ctx.isDraining());
        }
        if (withBody || !failure.retryable) break;
        continue;
      }
      ctx.upstreams.noteSuccess(backend.id);
      outcome.error = null;
      outcome.upstreamStatus = response.statusCode;
      hooks?.onBackend?.(backend);
      const responseHeaders = clientResponseHeaders(response.headers);
      if (route?.responseHeaders) editHeaderMap(responseHeaders, route.responseHeaders);
      // The response carries the request's id: one the upstream sent under that name is replaced.
      if (id) responseHeaders[id.header] = id.value;
      if (hooks?.editResponseHeaders) {
        try {
          await hooks.editResponseHeaders(responseHeaders);
        } catch (error) {
          // The upstream's body is not wanted any more; the caller answers 500.
          // undici's body emits an abort error when destroyed: nobody else listens for it.
          response.body.on('error', () => {}).destroy();
          throw error;
        }
      }
      if (ctx.isDraining()) responseHeaders['connection'] = 'close';
      res.writeHead(response.statusCode, responseHeaders);
      response.body.on('data', (chunk: Buffer) => (outcome.bodyBytes += chunk.length));
      try {
        await relay(response.body, res);
      } catch (error) {
        // The upstream died mid-body or the client went away: a truncated body
        // must never look complete, so the client connection goes.
        outcome.error = errorCode(error);
        ctx.onUpstreamError({ backend: backend.id, code: errorCode(error) });
        res.destroy();
      }
      return backend.id;
    } finally {
      inFlight.release(backend.slot);
    }
  }
  outcome.error ??= 'NO_SELECTABLE_BACKEND';
  answerPlain(outcome, res, 502, 'Bad Gateway', {}, ctx.isDraining());
  return undefined;
}
