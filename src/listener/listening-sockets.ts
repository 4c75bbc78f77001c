/**
 * The listening sockets of one listener of one listener thread: either
 * bound here (shared with the other threads through `reusePort`), or
 * inherited from the process this one replaces in a hot restart. The
 * primary server is what accepted connections go to: the HTTP server, a TLS
 * server, or a plain net server that passes them to the HTTP server.
 *
 * Inherited sockets are the very sockets the old process accepts on, so a
 * connection waiting in their accept queue is never lost: whichever process
 * accepts it serves it. They are adopted at start but only accepted on once
 * this process is healthy (`acceptDeferred`): until then the old process,
 * which can route, takes every connection.
 */
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { SystemFailure } from '../protocol.ts';

export type Bound = { ok: true; port: number } | { ok: false; failure: SystemFailure };

/** The file descriptor behind a listening server (libuv's; stable on Unix). */
function fdOf(server: NetServer): number | undefined {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

function listenOn(
  server: NetServer,
  options: { fd: number } | { host: string; port: number; reusePort: true },
): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const onError = (error: NodeJS.ErrnoException) => resolve(error);
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      resolve(undefined);
    });
  });
}

/** Inherited descriptors to accept on, or (none) the address to bind. */
export interface DeferredListen {
  fds: readonly number[];
  host: string;
  port: number;
}

export class ListeningSockets {
  /** The server every accepted connection is given to. */
  readonly #http: NetServer;
  /** Inherited sockets beyond the first: each accepts into the primary server. */
  readonly #extra: NetServer[] = [];
  #deferred: DeferredListen | undefined;

  constructor(primary: NetServer) {
    this.#http = primary;
  }

  async bind(host: string, port: number): Promise<Bound> {
    const error = await listenOn(this.#http, { host, port, reusePort: true });
    if (error)
      return {
        ok: false,
        failure: { code: error.code ?? 'LISTEN_FAILED', message: `cannot listen on ${host}:${port}: ${error.message}` },
      };
    const address = this.#http.address();
    return { ok: true, port: typeof address === 'object' && address ? address.port : port };
  }

  /**
   * A hot restart's successor: remember what to accept on — the inherited
   * sockets, or (when it has more listener threads than sockets were handed
   * over) the port to bind — and do it once the lifecycle is healthy.
   */
  defer(pending: DeferredListen): Bound {
    this.#deferred = pending;
    return { ok: true, port: pending.port };
  }

  get waitingToAccept(): boolean {
    return this.#deferred !== undefined;
  }

  /** Start accepting what `defer` named; the errors of what could not be served. */
  async acceptDeferred(): Promise<string[]> {
    const pending = this.#deferred;
    this.#deferred = undefined;
    if (!pending) return [];
    if (pending.fds.length === 0) {
      const bound = await this.bind(pending.host, pending.port);
      return bound.ok ? [] : [bound.failure.message];
    }
    const first = pending.fds[0]!;
    const rest = pending.fds.slice(1);
    const errors: string[] = [];
    const firstError = await listenOn(this.#http, { fd: first });
    if (firstError) errors.push(`fd ${first}: ${firstError.message}`);
    for (const fd of rest) {
      const pauseOnConnect = (this.#http as NetServer & { pauseOnConnect?: boolean }).pauseOnConnect;
      const server = createNetServer({ pauseOnConnect }, (socket: Socket) => this.#http.emit('connection', socket));
      const error = await listenOn(server, { fd });
      if (error) errors.push(`fd ${fd}: ${error.message}`);
      else this.#extra.push(server);
    }
    return errors;
  }

  /** The descriptors a successor process inherits to accept on the same sockets. */
  fds(): number[] {
    return [this.#http, ...this.#extra]
      .filter((s) => s.listening)
      .map(fdOf)
      .filter((fd) => fd !== undefined);
  }

  get listening(): boolean {
    return this.#http.listening;
  }

  /** Stop accepting here. A socket a successor inherited stays open in the successor. */
  close(): void {
    this.#deferred = undefined;
    if (this.#http.listening) this.#http.close();
    for (const server of this.#extra.splice(0)) server.close();
  }
}
