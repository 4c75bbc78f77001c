/**
 * The request hooks of one fast-path request, in Pingora's order:
 * onRequestStart, requestFilter (which may answer), upstreamPeer,
 * upstreamRequestFilter; then the exchange goes on as without hooks. A hook
 * that returns a plain value is continued at once; one that returns a
 * promise first has the exchange copy the head (`detachHead`), since its
 * bytes may not outlive the read that brought them.
 *
 * The chain knows the hooks' order and what each one's result means; the
 * exchange (exchange.ts) keeps every effect on the request, reached through
 * `HookChainSteps`.
 */
import type { BackendState } from '../../protocol.ts';
import { fromHeaderMap, toHeaderMap, type RequestHooks } from '../request-hooks.ts';
import { hookHeaderLines } from '../hook-headers.ts';
import { continueWith } from './continue-with.ts';
import type { FastSession } from './fast-session.ts';

/** What the chain asks of the exchange it runs for. */
export interface HookChainSteps {
  /** The exchange has ended (answered, failed, or the client left): nothing more to do. */
  done(): boolean;
  /** A hook is waiting: the head must stop pointing into the thread's shared read buffer. */
  detachHead(): void;
  failed(hook: keyof RequestHooks, error: unknown): void;
  /** requestFilter answered in the proxy's name. */
  respond(answer: { status: number; headers?: Record<string, string>; body?: string }): void;
  /** The backends upstreamPeer may choose from. */
  selectable(): readonly BackendState[];
  /** The headers the upstream would get, which upstreamRequestFilter may edit. */
  routedHeaders(): string[];
  /** Header lines from a hook, with the request's own framing put back. */
  reframed(lines: string[]): string[];
  /** Go on to the upstream: the chosen backend (or the balancer's), the hook's headers (or the rules'). */
  forward(chosen: BackendState | undefined, headers: readonly string[] | undefined): void;
}

export function runRequestHooks(hooks: RequestHooks, session: FastSession, steps: HookChainSteps): void {
  const goneAsync = () => steps.detachHead();
  const failed = (hook: keyof RequestHooks) => (error: unknown) => steps.failed(hook, error);
  const edit = (chosen: BackendState | undefined): void => {
    if (steps.done()) return;
    const upstreamRequestFilter = hooks.upstreamRequestFilter;
    if (!upstreamRequestFilter) return steps.forward(chosen, undefined);
    const map = toHeaderMap(steps.routedHeaders());
    continueWith(
      () => upstreamRequestFilter(session, map),
      () => steps.done() || steps.forward(chosen, steps.reframed(hookHeaderLines(fromHeaderMap(map)))),
      failed('upstreamRequestFilter'),
      goneAsync,
    );
  };
  const peer = (): void => {
    if (steps.done()) return;
    const upstreamPeer = hooks.upstreamPeer;
    if (!upstreamPeer) return edit(undefined);
    const selectable = steps.selectable();
    continueWith(
      () =>
        upstreamPeer(
          session,
          selectable.map(({ address, port }) => ({ address, port })),
        ),
      (choice) =>
        edit(choice ? selectable.find((b) => b.address === choice.address && b.port === choice.port) : undefined),
      failed('upstreamPeer'),
      goneAsync,
    );
  };
  const filter = (): void => {
    if (steps.done()) return;
    const requestFilter = hooks.requestFilter;
    if (!requestFilter) return peer();
    continueWith(
      () => requestFilter(session),
      (result) => (result?.respond ? steps.respond(result.respond) : peer()),
      failed('requestFilter'),
      goneAsync,
    );
  };
  const onRequestStart = hooks.onRequestStart;
  if (!onRequestStart) filter();
  else continueWith(() => onRequestStart(session), filter, failed('onRequestStart'), goneAsync);
}
