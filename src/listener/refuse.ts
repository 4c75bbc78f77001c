/**
 * An answer written straight to a socket that Node's HTTP machinery no longer
 * owns (a request its parser refused, an upgrade that cannot be tunnelled):
 * status line, `connection: close`, no body, then the connection ends.
 */
import type { Duplex } from 'node:stream';

export function refuseRaw(socket: Duplex, status: number, reason: string): void {
  if (socket.writable) socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  else socket.destroy();
}
