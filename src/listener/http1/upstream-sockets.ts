/**
 * The fast path's keep-alive connections to the backends, one idle list per
 * backend in each listener thread. Each socket gets its listeners once, for
 * its whole life, and they report to its current owner: the exchange using
 * it, or the idle list, which drops a connection that receives bytes,
 * closes, fails, or stays idle longer than IDLE_TIMEOUT_MS. The most
 * recently used connection is reused first (the least likely to have been
 * closed by the backend).
 *
 * A backend with `tls` gets a TLS connection (tls.connect), pooled the
 * same way; an idle connection is reused only for the same TLS settings,
 * so a reload that turns TLS on never sends a request in the clear. TLS
 * sockets read through 'data' events (TLSSocket has no `onread`); the
 * plain path is unchanged.
 */
import { connect, Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { BackendId, BackendState, UpstreamTls } from '../../protocol.ts';
import {
  forgetContexts,
  isTlsFailure,
  tlsIdentity,
  UPSTREAM_TLS_FAILED,
  upstreamTlsOptions,
} from '../../tls/upstream-tls.ts';

/** Below the 5 s keep-alive timeout of Node's and nginx's defaults, so we close first. */
export const IDLE_TIMEOUT_MS = 4_000;
/** More idle connections than this per backend are closed instead of kept. */
const MAX_IDLE_PER_BACKEND = 256;
/** What one read of an upstream socket may take: Node's own read size. */
const READ_BUFFER_BYTES = 64 * 1024;

/** Whoever uses an upstream socket now hears its events (with the socket: one owner may hold many). */
export interface UpstreamOwner {
  /**
   * Bytes read: `chunk` lies in the socket's read buffer, which the next read
   * overwrites unless this returns true (the bytes are still referenced, by a
   * write not yet flushed, say); the socket then reads into a new buffer.
   */
  onUpstreamData(chunk: Buffer, socket: Socket): boolean;
  onUpstreamEnd(socket: Socket): void;
  onUpstreamError(error: NodeJS.ErrnoException, socket: Socket): void;
  onUpstreamClose(socket: Socket): void;
  onUpstreamConnect(socket: Socket): void;
}

const OWNER = Symbol('sluice.upstreamOwner');
/** performance.now() of the first sweep that saw the socket idle (-1: released since the last sweep). */
const IDLE_SINCE = Symbol('sluice.idleSince');
/** The TLS settings it was opened with (tlsIdentity); undefined: plain. */
const TLS_IDENTITY = Symbol('sluice.tlsIdentity');
type OwnedSocket = Socket & { [OWNER]: UpstreamOwner; [IDLE_SINCE]: number; [TLS_IDENTITY]: string | undefined };

/** Events of a socket nobody uses any more (destroyed, or handed back while closing) are dropped. */
const dropped = (): void => {
  /* nobody uses the socket any more */
};
const nobody: UpstreamOwner = {
  onUpstreamData: () => false,
  onUpstreamEnd: dropped,
  onUpstreamError: dropped,
  onUpstreamClose: dropped,
  onUpstreamConnect: dropped,
};

function onEnd(this: OwnedSocket) {
  this[OWNER].onUpstreamEnd(this);
}
function onError(this: OwnedSocket, error: NodeJS.ErrnoException) {
  this[OWNER].onUpstreamError(error, this);
}
function onClose(this: OwnedSocket) {
  this[OWNER].onUpstreamClose(this);
}
function onConnect(this: OwnedSocket) {
  this[OWNER].onUpstreamConnect(this);
}
function onTlsData(this: OwnedSocket, chunk: Buffer) {
  // Each chunk is a Buffer of its own: nothing to keep from being overwritten.
  this[OWNER].onUpstreamData(chunk, this);
}
function onTlsError(this: OwnedSocket, error: NodeJS.ErrnoException) {
  this[OWNER].onUpstreamError(asTlsFailure(error), this);
}

/** A certificate that did not verify, or a failed handshake, is SLUICE_UPSTREAM_TLS (502); other errors stay. */
function asTlsFailure(error: NodeJS.ErrnoException): NodeJS.ErrnoException {
  if (error.code === undefined || !isTlsFailure(error.code)) return error;
  const failure: NodeJS.ErrnoException = new Error(`TLS to the backend failed (${error.code}): ${error.message}`, {
    cause: error,
  });
  failure.code = UPSTREAM_TLS_FAILED;
  return failure;
}

/** Close a socket nobody will use again; its remaining events go nowhere. */
function discard(socket: Socket): void {
  (socket as OwnedSocket)[OWNER] = nobody;
  socket.destroy();
}

/**
 * One backend's idle connections, and their owner while idle: anything a
 * connection does then (bytes, a FIN, an error, a close) means it cannot be
 * reused, and it is dropped.
 */
class IdleList implements UpstreamOwner {
  readonly sockets: OwnedSocket[] = [];

  drop(socket: Socket): void {
    const at = this.sockets.indexOf(socket as OwnedSocket);
    if (at !== -1) this.sockets.splice(at, 1);
    discard(socket);
  }

  onUpstreamData(_chunk: Buffer, socket: Socket): boolean {
    this.drop(socket);
    return false;
  }
  onUpstreamEnd(socket: Socket): void {
    this.drop(socket);
  }
  onUpstreamError(_error: Error, socket: Socket): void {
    this.drop(socket);
  }
  onUpstreamClose(socket: Socket): void {
    this.drop(socket);
  }
  onUpstreamConnect(): void {
    /* an idle socket has connected already */
  }
}

export class UpstreamSockets {
  readonly #idle = new Map<BackendId, IdleList>();
  /** The backends of the latest snapshot (undefined: none came yet): a removed one's connections are not kept. */
  #present: ReadonlySet<BackendId> | undefined;

  /** An idle keep-alive connection to `backend`, now `owner`'s (the backend may have closed it meanwhile), if there is one. */
  takeIdle(backend: BackendState, owner: UpstreamOwner): Socket | undefined {
    const idle = this.#idle.get(backend.id)?.sockets;
    const identity = backend.tls ? tlsIdentity(backend.tls) : undefined;
    let socket: OwnedSocket | undefined;
    while ((socket = idle?.pop())) {
      if (socket.destroyed || !socket.writable) continue;
      // Opened before a reload changed the backend's TLS settings: not for this request.
      if (socket[TLS_IDENTITY] !== identity) {
        discard(socket);
        continue;
      }
      socket[OWNER] = owner;
      return socket;
    }
    return undefined;
  }

  /** A new connection (connect errors reach the owner as errors). */
  connect(backend: BackendState, owner: UpstreamOwner): Socket {
    if (backend.tls) return this.#connectTls(backend, backend.tls, owner);
    // Reads go straight to the owner (`onread`), into a buffer of the socket's own that is
    // reused while nothing refers to what it holds: no Buffer made and no stream event per read.
    let readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
    let kept = false;
    const socket = connect({
      host: backend.address,
      port: backend.port,
      noDelay: true,
      onread: {
        buffer: () => (kept ? ((kept = false), (readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES))) : readBuffer),
        callback: (bytes: number, buffer: Uint8Array) => {
          kept = socket[OWNER].onUpstreamData((buffer as Buffer).subarray(0, bytes), socket);
          // Go on reading (backpressure pauses the socket explicitly).
          return true;
        },
      },
    }) as OwnedSocket;
    socket[OWNER] = owner;
    socket[IDLE_SINCE] = -1;
    socket[TLS_IDENTITY] = undefined;
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.once('connect', onConnect);
    return socket;
  }

  /** A TLS connection: connected, for the owner, once its handshake verified the backend. */
  #connectTls(backend: BackendState, tls: UpstreamTls, owner: UpstreamOwner): Socket {
    let socket: OwnedSocket;
    try {
      socket = tlsConnect({
        host: backend.address,
        port: backend.port,
        ...upstreamTlsOptions(tls),
      }) as unknown as OwnedSocket;
      socket.setNoDelay(true);
    } catch (error) {
      // The CA file could not be read any more (it was checked when the config was loaded).
      socket = new Socket() as OwnedSocket;
      const cause = error as NodeJS.ErrnoException;
      const failure: NodeJS.ErrnoException = new Error(`TLS to the backend failed: ${cause.message}`, { cause });
      failure.code = UPSTREAM_TLS_FAILED;
      process.nextTick(() => socket.destroy(failure));
    }
    socket[OWNER] = owner;
    socket[IDLE_SINCE] = -1;
    socket[TLS_IDENTITY] = tlsIdentity(tls);
    socket.on('data', onTlsData);
    socket.on('end', onEnd);
    socket.on('error', onTlsError);
    socket.on('close', onClose);
    socket.once('secureConnect', onConnect);
    return socket;
  }

  /** Keep `socket` for the next request to `backend` (the response on it is complete). */
  release(backend: BackendId, socket: Socket): void {
    const owned = socket as OwnedSocket;
    // Its request finished on a backend that left the set meanwhile: nothing will reuse the connection.
    if (this.#present !== undefined && !this.#present.has(backend)) return this.discard(socket);
    let idle = this.#idle.get(backend);
    if (!idle) this.#idle.set(backend, (idle = new IdleList()));
    if (idle.sockets.length >= MAX_IDLE_PER_BACKEND || socket.destroyed) return this.discard(socket);
    owned[OWNER] = idle;
    owned[IDLE_SINCE] = -1;
    // Idle sockets flow: bytes or a close from the backend are seen (and drop it) at once.
    if (socket.isPaused()) socket.resume();
    idle.sockets.push(owned);
  }

  /**
   * Called by the thread's deadline sweep: closes connections idle for
   * IDLE_TIMEOUT_MS (a per-socket timer, armed and cleared per request,
   * showed in the profile). Idle time is counted from the first sweep that
   * sees the socket idle, so it may run one sweep interval over.
   */
  sweep(now: number): void {
    for (const idle of this.#idle.values()) {
      for (let i = idle.sockets.length - 1; i >= 0; i--) {
        const socket = idle.sockets[i]!;
        if (socket[IDLE_SINCE] === -1) socket[IDLE_SINCE] = now;
        else if (now - socket[IDLE_SINCE] >= IDLE_TIMEOUT_MS) idle.drop(socket);
      }
    }
  }

  /** Close a socket nobody will use again; its remaining events go nowhere. */
  discard(socket: Socket): void {
    discard(socket);
  }

  /** Close the idle connections of backends no longer in the set. */
  keepOnly(present: ReadonlySet<BackendId>): void {
    this.#present = present;
    // A new set may come from a reload: TLS contexts are made again from their CA files.
    forgetContexts();
    for (const [id, idle] of this.#idle) {
      if (present.has(id)) continue;
      this.#idle.delete(id);
      for (const socket of idle.sockets.splice(0)) this.discard(socket);
    }
  }

  closeAll(): void {
    for (const idle of this.#idle.values()) for (const socket of idle.sockets.splice(0)) this.discard(socket);
    this.#idle.clear();
  }
}
