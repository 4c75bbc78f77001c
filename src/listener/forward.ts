/**
 * Forwarding one client request to a backend and streaming the answer back.
 *
 * Bodies stream both ways with backpressure (`relay`, and undici reading
 * the request), and a failure on either side tears down the other. Whether
 * a failed attempt is tried again, and where, is retry-policy.ts's rule,
 * the same for every engine.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { clientResponseHeaders, isLoop, protoOf, upstreamRequestHeaders } from './headers.ts';
import { relay } from './relay.ts';
import type { Upstreams } from './upstreams.ts';
import type { BackendState } from '../protocol.ts';
import type { RequestId } from './request-id.ts';
import { plainAnswer, sendOwnAnswer } from './own-answers.ts';
import { fromUndici } from './failures.ts';
import { afterFailure, failureStatusText } from './retry-policy.ts';
import { originForm } from '../routing/origin-form.ts';
import { editFlatHeaders, editHeaderMap, targetAfterStrip, type Route } from '../routing/route-table.ts';

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
export function sendPlain(
  res: ServerResponse,
  status: number,
  text: string,
  extra: Record<string, string> = {},
  close = false,
): void {
  sendOwnAnswer(res, plainAnswer(status, text, null), close, extra);
}

/** The proxy's own answer on this path, its body counted for the access log. */
function answerPlain(
  outcome: ForwardOutcome,
  res: ServerResponse,
  status: number,
  text: string,
  extra: Record<string, string>,
  close: boolean,
): void {
  outcome.bodyBytes = Buffer.byteLength(text) + 1;
  sendPlain(res, status, text, extra, close);
}

/** Trailers of the upstream's response, for a client that can take them whatever the framing (HTTP/2). */
function passTrailers(res: ServerResponse, trailers: Record<string, string | string[] | undefined>): void {
  const kept = clientResponseHeaders(trailers);
  if (Object.keys(kept).length > 0) res.addTrailers(kept);
}

const hasBody = (req: IncomingMessage) =>
  req.headers['transfer-encoding'] !== undefined ||
  (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

/** Resolves, once the response is sent, with the backend that answered (undefined: the proxy answered). */
export async function forward(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: ForwardContext,
): Promise<string | undefined> {
  const draining = ctx.isDraining();
  const outcome = ctx.outcome;
  if (isLoop(req.rawHeaders)) {
    outcome.error = 'LOOP_DETECTED';
    answerPlain(outcome, res, 508, 'Loop Detected', {}, draining);
    return undefined;
  }

  const withBody = hasBody(req);
  const hooks = ctx.hooks;
  const route = ctx.route;
  let headers = upstreamRequestHeaders(req.rawHeaders, {
    clientIp: req.socket.remoteAddress ?? '',
    proto: protoOf(req.socket),
  });
  if (route?.requestHeaders) headers = editFlatHeaders(headers, route.requestHeaders);
  const id = ctx.requestId;
  if (id?.generated) headers.push(id.header, id.value);
  const path = route?.stripPrefix ? targetAfterStrip(originForm(req.url ?? '/'), route.stripPrefix) : (req.url ?? '/');
  if (hooks?.editRequestHeaders) headers = await hooks.editRequestHeaders(headers);
  const tried = new Set<string>();
  let retrySame: BackendState | undefined;
  let staleRetried = false;
  let retries = 0;

  for (;;) {
    const chosen = outcome.attempts === 0 && hooks?.choosePeer ? await hooks.choosePeer() : undefined;
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
        response = await (
          await ctx.upstreams.poolFor(backend)
        ).request({
          path,
          method: req.method as Dispatcher.HttpMethod,
          headers,
          body: withBody ? req : null,
        });
      } catch (error) {
        const code = errorCode(error);
        outcome.error = code;
        ctx.onUpstreamError({ backend: backend.id, code });
        const step = afterFailure({
          code,
          retries,
          hasBody: withBody,
          // undici streams the body from the client: none of it is held for another attempt.
          bodyHeld: false,
          answered: false,
          // undici does not say whether the connection was reused: a stale-looking failure is taken for the race, once.
          reused: true,
          staleRetried,
        });
        if (step.passive) ctx.upstreams.noteFailure(backend.id, code);
        if (step.next === 'same-backend') {
          staleRetried = true;
          retrySame = backend;
          continue;
        }
        if (step.next === 'next-backend') {
          retries++;
          continue;
        }
        answerPlain(outcome, res, step.status, failureStatusText(step.status), {}, ctx.isDraining());
        return undefined;
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
          response.body
            .on('error', () => {
              /* undici's body emits an abort error when destroyed: nobody else listens for it */
            })
            .destroy();
          throw error;
        }
      }
      if (ctx.isDraining()) responseHeaders['connection'] = 'close';
      res.writeHead(response.statusCode, responseHeaders);
      response.body.on('data', (chunk: Buffer) => (outcome.bodyBytes += chunk.length));
      // HTTP/2 carries the upstream's trailers (undici has them at the body's end, before relay's pipe ends `res`).
      if (req.httpVersionMajor === 2) response.body.once('end', () => passTrailers(res, response.trailers));
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
