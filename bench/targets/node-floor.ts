// A reference, not a proxy: what Node's socket API allows on this machine for
// one request-response at a time per connection, with no HTTP rules at all.
// Bytes go through as they came (no header rewriting, no validation, no
// deadlines, no metrics); a head ends at its blank line and a response body
// is Content-Length bytes. Both sides read with `onread`, as sluice's fast
// path does, and write with socket.write. Benchmarks only: GETs to an
// upstream that answers with Content-Length.
import { connect, createServer, type Socket } from 'node:net';
import { readDirectly, setReader } from '../../src/listener/http1/direct-reads.ts';

const [listenPort, upstreamUrl] = process.argv.slice(2) as [string, string];
const upstream = new URL(upstreamUrl);
const BLANK_LINE = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:\s*(\d+)/i;

interface Upstream {
  socket: Socket;
  /** Where this connection's reads go: the client connection using it. */
  onBytes: ((bytes: Buffer) => void) | undefined;
}
const idle: Upstream[] = [];

function connectUpstream(): Upstream {
  const conn: Upstream = { socket: undefined as unknown as Socket, onBytes: undefined };
  const buffer = Buffer.allocUnsafe(64 * 1024);
  conn.socket = connect({
    host: upstream.hostname,
    port: Number(upstream.port),
    noDelay: true,
    onread: { buffer, callback: (n: number) => (conn.onBytes?.(Buffer.from(buffer.subarray(0, n))), true) },
  });
  conn.socket.on('error', () => {
    // the floor measures the happy path; a broken upstream shows as failed requests in wrk
  });
  return conn;
}

const server = createServer({ pauseOnConnect: true, noDelay: true }, (accepted) => {
  // Client reads with `onread` into one shared buffer, as sluice's (the bytes are copied before being kept).
  const client = readDirectly(accepted);
  setReader(client, (bytes) => onRequestBytes(bytes));
  client.on('error', () => {
    // a client that resets is wrk closing its connections at the end
  });
  let pending: Buffer | undefined;
  const onRequestBytes = (bytes: Buffer) => {
    pending = pending ? Buffer.concat([pending, bytes]) : Buffer.from(bytes);
    if (pending.indexOf(BLANK_LINE) === -1) return;
    const request = pending;
    pending = undefined;
    const conn = idle.pop() ?? connectUpstream();
    let response: Buffer | undefined;
    let remaining = -1;
    conn.onBytes = (bytes) => {
      if (remaining === -1) {
        response = response ? Buffer.concat([response, bytes]) : bytes;
        const end = response.indexOf(BLANK_LINE);
        if (end === -1) return;
        remaining =
          Number(CONTENT_LENGTH.exec(response.toString('latin1', 0, end))?.[1] ?? 0) - (response.length - end - 4);
        client.write(response);
      } else {
        remaining -= bytes.length;
        client.write(bytes);
      }
      if (remaining <= 0) {
        conn.onBytes = undefined;
        idle.push(conn);
      }
    };
    conn.socket.write(request);
  };
});
server.listen(Number(listenPort), '127.0.0.1');
