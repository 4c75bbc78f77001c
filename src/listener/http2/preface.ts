/**
 * h2c with prior knowledge beside HTTP/1.1 on one plain port: the first
 * bytes of a connection say which it speaks. An HTTP/2 client opens with the
 * preface `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (RFC 9113 §3.4); no HTTP/1.1
 * request starts with it (`PRI` is no method a proxy forwards), so the first
 * byte that differs settles it, and usually the very first read does.
 *
 * The socket reads directly (direct-reads.ts): the bytes read while
 * deciding are kept and given to whichever side takes the connection.
 */
import type { Socket } from 'node:net';
import { keep, setReader } from '../http1/direct-reads.ts';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** `h2`, `http1`, or undefined while `head` is a strict prefix of the preface. */
export function prefaceVerdict(head: Buffer): 'h2' | 'http1' | undefined {
  const length = Math.min(head.length, PREFACE.length);
  if (head.subarray(0, length).compare(PREFACE, 0, length) !== 0) return 'http1';
  return head.length >= PREFACE.length ? 'h2' : undefined;
}

/**
 * Reads `socket` (a direct-read socket, which reads from its creation) until its first bytes decide, then
 * calls `decide` with the verdict and every byte read so far. A client that
 * sends nothing within `timeoutMs` is closed, as a header timeout would.
 */
export function sniffPreface(
  socket: Socket,
  timeoutMs: number,
  decide: (verdict: 'h2' | 'http1', head: Buffer) => void,
): void {
  let head: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), timeoutMs).unref();
  socket.once('close', () => clearTimeout(timer));
  setReader(socket, (bytes) => {
    head = head.length === 0 ? keep(bytes) : Buffer.concat([head, bytes]);
    const verdict = prefaceVerdict(head);
    if (!verdict) return;
    clearTimeout(timer);
    setReader(socket, untilDecided);
    decide(verdict, head);
  });
}

function untilDecided(): void {
  // Nothing reads between the verdict and `decide`, which hands the socket to a side that sets its own reader.
}
