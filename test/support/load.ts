/**
 * Keep-alive load for the zero-loss tests: several clients, each on its own
 * keep-alive connection, send requests back to back and every outcome is
 * counted by kind. A response counts as `ok` only when it is a 200 whose body
 * is complete (as long as its Content-Length, ending with the upstream's
 * marker), so a truncated body can never pass as a success.
 */
import { Agent, request } from 'node:http';

export interface LoadCounts {
  ok: number;
  /** ECONNREFUSED: nobody listening. Allowed only where the test says so. */
  refused: number;
  /**
   * A fresh connection reset before any response byte: the kernel completed
   * the handshake but the listening socket closed before the process accepted
   * it (Linux resets its accept queue on close). Never read by the proxy.
   */
  unaccepted: number;
  /** ECONNRESET, EPIPE, "socket hang up" on a connection the proxy had served: a request lost. */
  reset: number;
  status5xx: number;
  otherStatus: number;
  /** A body shorter than announced, or without the upstream's end marker. */
  truncated: number;
  other: number;
}

export interface LoadRun {
  counts: LoadCounts;
  /** Which upstream answered, by its name, in order of the responses. */
  answeredBy: string[];
  /** Error messages of the failures, for the assertion messages. */
  failures: string[];
  /** When each non-ok outcome happened (ms since the epoch, as the log's `time`). */
  failedAt: { at: number; kind: keyof LoadCounts }[];
  /** Resolves once `count` more responses came back ok. */
  okAfter(count: number, timeoutMs?: number): Promise<void>;
  /** Stops sending, waits for the requests in flight, returns the counts. */
  stop(): Promise<LoadCounts>;
}

const emptyCounts = (): LoadCounts => ({
  ok: 0,
  refused: 0,
  unaccepted: 0,
  reset: 0,
  status5xx: 0,
  otherStatus: 0,
  truncated: 0,
  other: 0,
});

/**
 * `clients` loops against 127.0.0.1:`port`. Each stops by itself after
 * `maxMs` (default 60 s) even if nobody calls stop(), so no test can leave it running.
 */
export function startLoad(
  port: number,
  options: { clients?: number; path?: string; maxMs?: number; marker?: string } = {},
): LoadRun {
  const counts = emptyCounts();
  const answeredBy: string[] = [];
  const failures: string[] = [];
  const failedAt: { at: number; kind: keyof LoadCounts }[] = [];
  const path = options.path ?? '/load';
  const deadline = Date.now() + (options.maxMs ?? 60_000);
  let running = true;
  let waiters: { target: number; resolve: () => void }[] = [];

  const record = (kind: keyof LoadCounts, detail?: string) => {
    counts[kind]++;
    if (kind !== 'ok') failedAt.push({ at: Date.now(), kind });
    if (kind !== 'ok' && failures.length < 20) failures.push(`${kind}: ${detail}`);
    if (kind === 'ok') {
      waiters = waiters.filter((w) => {
        if (counts.ok < w.target) return true;
        w.resolve();
        return false;
      });
    }
  };

  const once = (agent: Agent) =>
    new Promise<void>((resolve) => {
      let responded = false;
      const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
        responded = true;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error) => {
          record('truncated', error.message);
          resolve();
        });
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString();
          const status = res.statusCode ?? 0;
          const announced = Number(res.headers['content-length'] ?? Number.NaN);
          if (status >= 500) record('status5xx', `${status} ${body.slice(0, 80)}`);
          else if (status !== 200) record('otherStatus', String(status));
          else if ((Number.isFinite(announced) && body.length !== announced) || !body.endsWith(options.marker ?? '\n'))
            record('truncated', `${body.length} of ${announced}`);
          else {
            answeredBy.push(body.trim());
            record('ok');
          }
          resolve();
        });
        res.on('aborted', () => {
          record('truncated', 'aborted');
          resolve();
        });
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        const code = error.code ?? '';
        if (code === 'ECONNREFUSED') record('refused', error.message);
        else if (
          (code === 'ECONNRESET' || code === 'EPIPE' || error.message === 'socket hang up') &&
          !req.reusedSocket &&
          !responded
        )
          record('unaccepted', `${code} ${error.message}`);
        else if (code === 'ECONNRESET' || code === 'EPIPE' || error.message === 'socket hang up')
          record('reset', `${code} ${error.message} (reused: ${req.reusedSocket})`);
        else record('other', `${code} ${error.message}`);
        resolve();
      });
      req.setTimeout(10_000, () => req.destroy(new Error('client timeout (10 s)')));
      req.end();
    });

  const client = async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    while (running && Date.now() < deadline) await once(agent);
    agent.destroy();
  };
  const loops = Array.from({ length: options.clients ?? 8 }, client);

  return {
    counts,
    answeredBy,
    failures,
    failedAt,
    okAfter(count, timeoutMs = 10_000) {
      const target = counts.ok + count;
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `fewer than ${count} ok responses within ${timeoutMs} ms: ${JSON.stringify(counts)} ${failures.join('; ')}`,
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
