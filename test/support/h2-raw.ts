/**
 * An HTTP/2 client that speaks frames by hand, for the tests that must see
 * exactly which frames the proxy sends and in what order (the drain's
 * GOAWAYs and PING, RST_STREAM codes), or send what a well-behaved client
 * library refuses to (uppercase names, connection headers, rapid resets).
 *
 * Requests use HPACK literals without indexing and no Huffman coding
 * (RFC 7541 §6.2.2), so nothing needs a table. Responses are not decoded:
 * the tests read frame types, flags, stream ids and error codes.
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
export const CODE = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  CANCEL: 8,
  REFUSED_STREAM: 7,
  ENHANCE_YOUR_CALM: 11,
} as const;
const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
  /** ms since the client connected. */
  at: number;
}

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function hpackInt(value: number, prefixBits: number, first = 0): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  value -= max;
  while (value >= 128) {
    out.push((value % 128) + 128);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

const hpackString = (text: string) => [...hpackInt(Buffer.byteLength(text), 7), ...Buffer.from(text, 'latin1')];

/** A header block of literals without indexing, names as given (even uppercase: the test decides). */
export function headerBlock(headers: [string, string][]): Buffer {
  const bytes: number[] = [];
  for (const [name, value] of headers) bytes.push(0x00, ...hpackString(name), ...hpackString(value));
  return Buffer.from(bytes);
}

export const requestHeaders = (path: string, extra: [string, string][] = [], method = 'GET'): [string, string][] => [
  [':method', method],
  [':scheme', 'http'],
  [':authority', 'h2.test'],
  [':path', path],
  ...extra,
];

export interface RawH2 {
  socket: Socket;
  frames: Frame[];
  /** Resolves with the first frame (from `from` on) that matches. */
  next(match: (f: Frame) => boolean, timeoutMs?: number, from?: number): Promise<Frame>;
  request(stream: number, headers: [string, string][], endStream?: boolean): void;
  send(bytes: Buffer): void;
  /** Resolves once the proxy closed the connection. */
  closed: Promise<void>;
  /** Whether PINGs are answered (the drain's second GOAWAY waits for the ACK, or 1 s). */
  answerPings: boolean;
  close(): void;
}

export const goawayOf = (f: Frame) => ({
  lastStream: f.payload.readUInt32BE(0) & 0x7fffffff,
  code: f.payload.readUInt32BE(4),
});
export const rstCodeOf = (f: Frame) => f.payload.readUInt32BE(0);

/** Connects, sends the preface and an empty SETTINGS, ACKs the server's SETTINGS and (unless told not to) its PINGs. */
export function rawH2(port: number, options: { tls?: { ca: string; servername?: string } } = {}): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket: Socket = options.tls
      ? connectTls({
          host: '127.0.0.1',
          port,
          ca: options.tls.ca,
          servername: options.tls.servername,
          ALPNProtocols: ['h2'],
          checkServerIdentity: () => undefined,
        })
      : connectTcp({ host: '127.0.0.1', port });
    const frames: Frame[] = [];
    let waiters: { match: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
    let buffer = Buffer.alloc(0);
    let closedResolve: () => void;
    const closed = new Promise<void>((r) => (closedResolve = r));
    const client: RawH2 = {
      socket,
      frames,
      answerPings: true,
      closed,
      next(match, timeoutMs = 5_000, from = 0) {
        const seen = frames.slice(from).find(match);
        if (seen) return Promise.resolve(seen);
        return new Promise((res, rej) => {
          const timer = setTimeout(
            () => rej(new Error(`no such frame within ${timeoutMs} ms; got ${describe(frames)}`)),
            timeoutMs,
          );
          waiters.push({
            match,
            resolve: (f) => {
              clearTimeout(timer);
              res(f);
            },
          });
        });
      },
      request(stream, headers, endStream = true) {
        socket.write(
          frame(FRAME.HEADERS, FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0), stream, headerBlock(headers)),
        );
      },
      send: (bytes) => void socket.write(bytes),
      close: () => socket.destroy(),
    };
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 9) {
        const length = buffer.readUIntBE(0, 3);
        if (buffer.length < 9 + length) break;
        const f: Frame = {
          type: buffer[3]!,
          flags: buffer[4]!,
          stream: buffer.readUInt32BE(5) & 0x7fffffff,
          payload: buffer.subarray(9, 9 + length),
          at: performance.now() - started,
        };
        buffer = buffer.subarray(9 + length);
        frames.push(f);
        if (f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK)) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        if (f.type === FRAME.PING && !(f.flags & FLAG.ACK) && client.answerPings)
          socket.write(frame(FRAME.PING, FLAG.ACK, 0, f.payload));
        waiters = waiters.filter((w) => (w.match(f) ? (w.resolve(f), false) : true));
      }
    });
    socket.on('close', () => closedResolve());
    socket.on('error', () => {
      // A reset or refused socket also closes: 'close' settles what waits on it.
    });
    socket.once(options.tls ? 'secureConnect' : 'connect', () => {
      socket.write(Buffer.concat([Buffer.from(PREFACE, 'latin1'), frame(FRAME.SETTINGS, 0, 0)]));
      resolve(client);
    });
    socket.once('error', reject);
  });
}

const NAMES = Object.fromEntries(Object.entries(FRAME).map(([name, type]) => [type, name]));

/** `GOAWAY(0, last 2147483647, NO_ERROR=0)`-style lines, for assertion messages. */
export function describe(frames: Frame[]): string {
  return frames
    .map((f) => {
      const name = NAMES[f.type] ?? `type${f.type}`;
      if (f.type === FRAME.GOAWAY) return `GOAWAY(last ${goawayOf(f).lastStream}, code ${goawayOf(f).code})`;
      if (f.type === FRAME.RST_STREAM) return `RST_STREAM(${f.stream}, code ${rstCodeOf(f)})`;
      return `${name}(${f.stream}, flags ${f.flags})`;
    })
    .join(' ');
}
