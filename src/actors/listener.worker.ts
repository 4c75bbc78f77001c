/**
 * A listener actor's thread: accepts client connections on the shared port
 * (reusePort) and forwards requests. Everything a request needs is held in
 * this thread; the supervisor only sends control: snapshots, status, drain.
 */
import { hooksLoadFailure, loadRequestHooks, type RequestHooks } from '../listener/request-hooks.ts';
import { ListenerServer } from '../listener/server.ts';
import { threadTicketKeys } from '../listener/tls/ticket-keys.ts';
import { createLogger, reopenLogFiles, type Logger } from '../log.ts';
import type { ListenerApi, ListenerEvent, ListenerInit } from '../protocol.ts';
import { exposeActor } from './expose.ts';
import { runTestHooks } from './test-hooks.ts';

let server: ListenerServer | undefined;
let log: Logger | undefined;
let id = -1;
let emit: ((event: ListenerEvent) => void) | undefined;

function started(): ListenerServer {
  if (!server) throw new Error('listener actor not started');
  return server;
}

// A thread that throws writes its batched access-log lines first; rethrown, the error still ends the
// thread and reaches the supervisor as before (its 'error' event, code and message intact).
process.on('uncaughtException', (error) => {
  server?.flushAccessLog();
  throw error;
});

const api: ListenerApi = {
  async start(init: ListenerInit, onEvent: (event: ListenerEvent) => void) {
    await runTestHooks('listener', init.id);
    id = init.id;
    emit = onEvent;
    log = createLogger(init.log, { actor: 'listener', listener: id });
    const hooksModule = init.config.proxy.request_hooks;
    let hooks: RequestHooks | undefined;
    try {
      hooks = await loadRequestHooks(hooksModule);
    } catch (error) {
      // Returned as data: thrown, comlink would carry the message only, and the code would be lost.
      return { ok: false, setup: hooksLoadFailure(hooksModule ?? '', error) /* only a module given can fail */ };
    }
    if (hooks)
      log.debug(
        { event: 'hooks.loaded', module: init.config.proxy.request_hooks, hooks: Object.keys(hooks) },
        'request hooks loaded',
      );
    // Before the TLS listeners are made: their contexts issue tickets with these keys from the first handshake.
    threadTicketKeys.set(init.ticketKeys);
    server = new ListenerServer(
      init.config,
      { connections: init.connectionCounter, inFlight: init.inFlight, thread: init.id },
      log,
      (report) => emit?.({ type: 'listener.passive', id, report }),
      hooks,
      init.tls,
    );
    server.metrics.watchEventLoop(id);
    if (init.snapshot) server.applySnapshot(init.snapshot);
    server.setStatus(init.status);
    const result = await server.bind(init.ports, init.inheritedFds);
    if (result.ok) log.debug({ ports: result.ports }, 'listening');
    return result;
  },
  applySnapshot: (snapshot) => started().applySnapshot(snapshot),
  setStatus: (status) => started().setStatus(status),
  closeListening: () => started().closeListening(() => emit?.({ type: 'listener.drained', id })),
  forceClose: () => started().forceClose(),
  metrics: () => started().metrics.json(),
  reopenLog() {
    reopenLogFiles();
    server?.reopenAccessLog();
  },
  heartbeat: () => Date.now(),
  reconfigure: (config, tls) => started().reconfigure(config, tls),
  listeningFds: () => started().listeningFds(),
  setTicketKeys: (keys) => threadTicketKeys.set(keys),
  async stop() {
    server?.metrics.stop();
    await server?.stop();
    log?.flush();
  },
};

exposeActor(api);
