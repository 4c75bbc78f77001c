/**
 * The fast path's keep-alive connections to the backends, one idle list per
 * backend in each listener thread. Each socket gets its listeners once, for
 * its whole life, and they report to its current owner: the exchange using
 * it, or the idle list, which drops a connection that receives bytes,
 * closes, fails, or stays idle longer than IDLE_TIMEOUT_MS. The most
 * recently used connection is reused first (the least likely to have been
 * closed by the backend).
 */
import { connect, type Socket } from 'node:net';
import type { BackendId, BackendState } from '../../protocol.ts';

/** Below the 5 s keep-alive timeout of Node's and nginx's defaults, so we close first. */
export const IDLE_TIMEOUT_MS = 4_000;
/** More idle connections than this per backend are closed instead of kept. */
const MAX_IDLE_PER_BACKEND = 256;

/** Whoever uses an upstream socket now hears its events. */
export interface UpstreamOwner {
  onUpstreamData(chunk: Buffer): void;
  onUpstreamEnd(): void;
  onUpstreamError(error: NodeJS.ErrnoException): void;
  onUpstreamClose(): void;
  onUpstreamTimeout(): void;
  onUpstreamConnect(): void;
}

export interface TakenSocket {
  socket: Socket;
  /** An idle keep-alive connection: the backend may have closed it meanwhile. */
  reused: boolean;
}

const OWNER = Symbol('sluice.upstreamOwner');
type OwnedSocket = Socket & { [OWNER]: UpstreamOwner };

/** Events of a socket nobody uses any more (destroyed, or handed back while closing) are dropped. */
const nobody: UpstreamOwner = {
  onUpstreamData: () => {},
  onUpstreamEnd: () => {},
  onUpstreamError: () => {},
  onUpstreamClose: () => {},
  onUpstreamTimeout: () => {},
  onUpstreamConnect: () => {},
};

function onData(this: OwnedSocket, chunk: Buffer) { this[OWNER].onUpstreamData(chunk); }
function onEnd(this: OwnedSocket) { this[OWNER].onUpstreamEnd(); }
function onError(this: OwnedSocket, error: NodeJS.ErrnoException) { this[OWNER].onUpstreamError(error); }
function onClose(this: OwnedSocket) { this[OWNER].onUpstreamClose(); }
function onTimeout(this: OwnedSocket) { this[OWNER].onUpstreamTimeout(); }
function onConnect(this: OwnedSocket) { this[OWNER].onUpstreamConnect(); }

export class UpstreamSockets {
  readonly #idle = new Map<BackendId, OwnedSocket[]>();

  take(backend: BackendState, owner: UpstreamOwner): TakenSocket {
    const idle = this.#idle.get(backend.id);
    while (idle && idle.length > 0) {
      const socket = idle.pop()!;
      if (socket.destroyed || !socket.writable) continue;
      socket[OWNER] = owner;
      return { socket, reused: true };
    }
    return { socket: this.connect(backend, owner), reused: false };
  }

  /** A new connection (connect errors reach the owner as errors). */
  connect(backend: BackendState, owner: UpstreamOwner): Socket {
    const socket = connect({ host: backend.address, port: backend.port, noDelay: true }) as OwnedSocket;
    socket[OWNER] = owner;
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('timeout', onTimeout);
    socket.once('connect', onConnect);
    return socket;
  }

  /** Keep `socket` for the next request to `backend` (the response on it is complete). */
  release(backend: BackendId, socket: Socket): void {
    const owned = socket as OwnedSocket;
    let idle = this.#idle.get(backend);
    if (!idle) this.#idle.set(backend, (idle = []));
    if (idle.length >= MAX_IDLE_PER_BACKEND || socket.destroyed) return this.discard(socket);
    const list = idle;
    const drop = () => {
      const at = list.indexOf(owned);
      if (at !== -1) list.splice(at, 1);
      this.discard(socket);
    };
    owned[OWNER] = { onUpstreamData: drop, onUpstreamEnd: drop, onUpstreamError: drop, onUpstreamClose: drop, onUpstreamTimeout: drop, onUpstreamConnect: () => {} };
    // Idle sockets flow: bytes or a close from the backend are seen (and drop it) at once.
    socket.resume();
    socket.setTimeout(IDLE_TIMEOUT_MS);
    list.push(owned);
  }

  /** Close a socket nobody will use again; its remaining events go nowhere. */
  discard(socket: Socket): void {
    (socket as OwnedSocket)[OWNER] = nobody;
    socket.destroy();
  }

  /** Close the idle connections of backends no longer in the set. */
  keepOnly(present: ReadonlySet<BackendId>): void {
    for (const [id, idle] of this.#idle) {
      if (present.has(id)) continue;
      this.#idle.delete(id);
      for (const socket of idle.splice(0)) this.discard(socket);
    }
  }

  closeAll(): void {
    for (const idle of this.#idle.values()) for (const socket of idle.splice(0)) this.discard(socket);
    this.#idle.clear();
  }
}
