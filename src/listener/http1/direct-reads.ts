/**
 * Client sockets whose reads skip Node's stream machinery: each read lands
 * in one buffer shared by every client socket of the thread and is handed
 * straight to the socket's reader — no Buffer allocated per read, no
 * Readable push, 'data' event or nextTick. The upstream side has done this
 * from the start (upstream-sockets.ts); here it needs one more step, since
 * Node's server creates accepted sockets without the `onread` option: the
 * accepted socket's handle is moved to a new Socket that has it.
 *
 * The price of the shared buffer: the bytes a reader is given are valid only
 * until it returns. Whatever must live longer (a partial head, a request
 * body, pipelined bytes) is copied out by the reader. A connection handed
 * to Node's HTTP server gets a reader that does exactly that: it copies each
 * read and pushes it into the socket's stream, as Node would have.
 *
 * A TLS socket cannot read this way (its handle is OpenSSL's, which decrypts
 * into buffers of its own): `readFromStream` gives its 'data' chunks to the
 * same reader, so one ClientConnection serves both. Those chunks are the
 * socket's own, so `keep` leaves them as they are.
 */
import { Socket } from 'node:net';

/** Node's own read size. */
const READ_BUFFER_BYTES = 64 * 1024;
const readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);

/**
 * Takes the bytes of one read; they are overwritten by the next read of any socket of the thread.
 * Answering `false` stops reading; anything else (most readers answer nothing) reads on.
 */
export type Reader = (this: Socket, bytes: Buffer) => unknown;

const READER = Symbol('sluice.reader');
type DirectSocket = Socket & { [READER]: Reader };

/** Node calls `onread.callback` as a method of the socket that read. */
function onRead(this: DirectSocket, bytes: number): boolean {
  return this[READER](readBuffer.subarray(0, bytes)) !== false;
}

/** Reads nobody takes yet are dropped (a connection not yet given a reader). */
const dropBytes: Reader = () => {
  /* nobody reads this connection yet */
};

/** The stream way: a copy of each read pushed into the socket's Readable; a full one stops reading until it is read. */
const pushToStream: Reader = function (bytes) {
  return this.push(Buffer.from(bytes));
};

interface SocketInternals {
  _handle: unknown;
  _server: unknown;
  server: unknown;
  allowHalfOpen: boolean;
}

/**
 * A socket over `accepted`'s connection that reads directly. `accepted` must
 * not have started reading (its server has `pauseOnConnect`); it is left
 * without a handle and must not be used again.
 */
export function readDirectly(accepted: Socket): Socket {
  const old = accepted as unknown as SocketInternals;
  const socket = new Socket({
    handle: old._handle,
    allowHalfOpen: old.allowHalfOpen,
    readable: true,
    writable: true,
    onread: { buffer: readBuffer, callback: onRead },
  } as ConstructorParameters<typeof Socket>[0]) as DirectSocket;
  // The server counts its connections by their sockets: the new one is counted in place of the old.
  const moved = socket as unknown as SocketInternals;
  moved._server = old._server;
  moved.server = old.server;
  old._server = null;
  old._handle = null;
  socket[READER] = dropBytes;
  return socket;
}

/** `bytes` itself, or a copy if it lies in the shared read buffer: for bytes that must outlive the read. */
export function keep(bytes: Buffer): Buffer {
  return bytes.buffer === readBuffer.buffer ? Buffer.from(bytes) : bytes;
}

export function setReader(socket: Socket, reader: Reader): void {
  (socket as DirectSocket)[READER] = reader;
}

/** A 'data' listener that hands each chunk to the socket's reader. */
function toReader(this: DirectSocket, chunk: Buffer): void {
  this[READER](chunk);
}

/** A socket that cannot read directly (TLS): its stream's chunks go to the reader `setReader` gives. */
export function readFromStream(socket: Socket): Socket {
  setReader(socket, dropBytes);
  socket.on('data', toReader);
  return socket;
}

/** From now on the socket's bytes go through its stream (for Node's HTTP server). */
export function readAsStream(socket: Socket): void {
  // A stream-fed socket already reads through its stream: only the reader's listener goes.
  if (socket.listeners('data').includes(toReader)) return void socket.off('data', toReader);
  setReader(socket, pushToStream);
}

/** Gives `bytes` to the socket's current reader, as if just read (bytes an HTTP/2 preface check read first). */
export function replay(socket: Socket, bytes: Buffer): void {
  (socket as DirectSocket)[READER].call(socket, bytes);
}
