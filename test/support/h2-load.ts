/**
 * HTTP/2 load for the zero-loss tests: a few connections (node:http2
 * sessions), each with several streams in flight back to back. A response
 * counts as `ok` only when it is a 200 whose body is complete (as long as its
 * Content-Length, ending with the upstream's newline).
 *
 * What a client may retry safely is counted apart, never as a loss:
 * a request refused before it was sent (its session had a GOAWAY, or was
 * closing), and a stream refused with REFUSED_STREAM (RFC 9113 §8.7: not
 * processed). A connection is opened again when its session ends.
 */
import { connect, constants, type ClientHttp2Session } from 'node:http2';

export interface H2LoadCounts {
  ok: number;
  /** REFUSED_STREAM, or never sent (the session was going away): retried. */
  retried: number;
  /** ECONNREFUSED while connecting: nobody listening. */
  refused: number;
  /**
   * A connection the server never spoke on (not even its SETTINGS): the
   * kernel completed the handshake, but the listening socket closed before
   * the process accepted it. Its streams were never read by the proxy.
   */
  unaccepted: number;
  /** A sent stream that failed otherwise (reset, session destroyed): a request lost. */
  lost: number;
  status5xx: number;
  otherStatus: number;
  truncated: number;
}

export interface H2LoadRun {
  counts: H2LoadCounts;
  failures: string[];
  okAfter(count: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<H2LoadCounts>;
}

export function startH2Load(
  port: number,
  options: { connections?: number; streams?: number; path?: string; maxMs?: number } = {},
): H2LoadRun {
  const counts: H2LoadCounts = {
    ok: 0,
    retried: 0,
    refused: 0,
    unaccepted: 0,
    lost: 0,
    status5xx: 0,
    otherStatus: 0,
    truncated: 0,
  };
  const failures: string[] = [];
  const deadline = Date.now() + (options.maxMs ?? 60_000);
  const path = options.path ?? '/load';
  let running = true;
  let waiters: { target: number; resolve: () => void }[] = [];
  const record = (kind: keyof H2LoadCounts, detail?: string) => {
    counts[kind]++;
    if (kind !== 'ok' && kind !== 'retried' && failures.length < 20) failures.push(`${kind}: ${detail}`);
    if (kind === 'ok') waiters = waiters.filter((w) => (counts.ok >= w.target ? (w.resolve(), false) : true));
  };

  /** One request; resolves false when the session cannot take more. */
  const heard = new WeakSet<ClientHttp2Session>();
  const once = (session: ClientHttp2Session) =>
    new Promise<boolean>((resolve) => {
      if (session.closed || session.destroyed) return resolve(false);
      let stream;
      try {
        stream = session.request({ ':path': path });
      } catch {
        record('retried');
        return resolve(false);
      }
      let status = 0;
      let announced = Number.NaN;
      const chunks: Buffer[] = [];
      stream.on('response', (headers) => {
        status = Number(headers[':status']);
        announced = Number(headers['content-length'] ?? Number.NaN);
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        if (status === 0 && !heard.has(session)) record('unaccepted', 'ended before the server spoke');
        else if (status >= 500) record('status5xx', `${status} ${body.slice(0, 80)}`);
        else if (status !== 200) record('otherStatus', String(status));
        else if ((Number.isFinite(announced) && body.length !== announced) || !body.endsWith('\n'))
          record('truncated', `${body.length} of ${announced}`);
        else record('ok');
        resolve(true);
      });
      stream.on('error', (error: NodeJS.ErrnoException) => {
        const code = error.code ?? '';
        // Never sent: the session had a GOAWAY before this stream got an id.
        if (code === 'ERR_HTTP2_GOAWAY_SESSION' || stream.id === undefined) record('retried');
        else if (!heard.has(session)) record('unaccepted', `${code} ${error.message}`);
        else if (stream.rstCode === constants.NGHTTP2_REFUSED_STREAM) record('retried');
        else record('lost', `${code} ${error.message} (stream ${stream.id}, rst ${stream.rstCode})`);
        resolve(false);
      });
      stream.setTimeout(10_000, () => stream.close(constants.NGHTTP2_CANCEL));
    });

  const connection = async () => {
    while (running && Date.now() < deadline) {
      const session = connect(`http://127.0.0.1:${port}`);
      session.once('remoteSettings', () => heard.add(session));
      const ended = new Promise<void>((resolve) => session.once('close', resolve));
      const failed = await new Promise<boolean>((resolve) => {
        session.once('connect', () => resolve(false));
        session.once('error', (error: NodeJS.ErrnoException) => {
          if (error.code === 'ECONNREFUSED') record('refused', error.message);
          resolve(true);
        });
      });
      session.on('error', () => {
        // A session's failure reaches each of its streams, which records it.
      });
      if (!failed) {
        const worker = async () => {
          while (running && Date.now() < deadline && (await once(session)));
        };
        await Promise.all(Array.from({ length: options.streams ?? 8 }, worker));
      }
      session.close();
      await ended;
      if (failed) await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const loops = Array.from({ length: options.connections ?? 3 }, connection);

  return {
    counts,
    failures,
    okAfter(count, timeoutMs = 10_000) {
      const target = counts.ok + count;
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `fewer than ${count} ok within ${timeoutMs} ms: ${JSON.stringify(counts)} ${failures.join('; ')}`,
              ),
            ),
          timeoutMs,
        );
        waiters.push({
          target,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    async stop() {
      running = false;
      await Promise.all(loops);
      return { ...counts };
    },
  };
}
