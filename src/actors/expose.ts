/** The worker side of an actor: expose its API to the supervisor over comlink. */
import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';

export function exposeActor(api: object): void {
  if (!parentPort) throw new Error('an actor module must run in a worker thread');
  Comlink.expose(api, nodeEndpoint(parentPort));
}

/** Wrap a callback so the other thread can call it (events flow worker → supervisor this way). */
export const callable = Comlink.proxy;
