/**
 * Bodies stream with backpressure in both directions (memory stays bounded,
 * not proportional to the body), and upstream connections are kept alive
 * and reused; in every way a request can enter (plain, with request hooks,
 * through a route).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest, Agent, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { get } from '../support/http.ts';
import { killAll, type SluiceProcess, startSluice, stopSluice, transitionTo } from '../support/sluice-process.ts';
import { HEALTH_PATH } from '../support/upstream.ts';
import { testConfig, writeConfig } from '../support/config-file.ts';
import { entered, enter, entries } from '../support/entries.ts';

const MB = 1024 * 1024;
const chunk = Buffer.alloc(64 * 1024, 'x');
let backend: Server | undefined;
let sluice: SluiceProcess | undefined;
/**
 * This process hashes and streams hundreds of MB while the proxy probes its backend: on a loaded
 * machine one probe can miss testConfig's 500 ms, and one miss would flip the backend (502s).
 * These tests are about bodies, not health: the backend stays healthy through a few slow probes.
 */
const STEADY_HEALTH = { timeout_ms: 3000, unhealthy_threshold: 5 };
let port = 0;
const forwardedSockets = new Set<Socket>();

const memory = (field: 'VmRSS' | 'VmHWM') =>
  Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${sluice!.pid}/status`, 'utf8'))![1]) * 1024;

/** Bytes that differ at every offset (a 32-bit xorshift stream): any byte out of place changes the digest. */
function pattern(bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let state = 0x9e3779b9;
  for (let i = 0; i + 4 <= bytes; i += 4) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out.writeUInt32LE(state >>> 0, i);
  }
  return out;
}

/** Reads `stream` in bursts with pauses, so that what the proxy writes to its reader queues up; its SHA-256 and length. */
function digestSlowly(stream: Readable): Promise<{ digest: string; length: number }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let length = 0;
    let bursts = 0;
    stream.on('data', (data: Buffer) => {
      hash.update(data);
      length += data.length;
      // Every 8th read, stop reading until the proxy has had to queue what it wrote.
      if (++bursts % 8 === 0) {
        stream.pause();
        setImmediate(() => stream.resume());
      }
    });
    stream.on('end', () => resolve({ digest: hash.digest('hex'), length }));
    stream.on('error', reject);
  });
}

/** Downloads `path`, reading slowly (digestSlowly). */
function slowDigest(path: string): Promise<{ status: number; digest: string; length: number }> {
  return new Promise((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      digestSlowly(res).then((answer) => resolve({ status: res.statusCode!, ...answer }), reject);
    })
      .on('error', reject)
      .end();
  });
}

/** Downloads `mb` MB through the proxy, reading slowly enough to need backpressure. */
function download(mb: number): Promise<number> {
  return new Promise((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port, path: `/download/${mb}`, agent: false }, (res) => {
      let received = 0;
      res.on('data', (data: Buffer) => (received += data.length));
      res.on('end', () => resolve(received));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

/** Uploads `mb` MB through the proxy (chunked), honouring backpressure; resolves with what the backend counted. */
function upload(mb: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/upload', method: 'POST', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (text: string) => (body += text));
      res.on('end', () => resolve(Number(body)));
    });
    req.on('error', reject);
    let left = mb * MB;
    const pump = () => {
      while (left > 0) {
        left -= chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

/** Uploads `body` in pieces of odd sizes, by length or chunked; resolves with what the backend read: "length digest". */
function uploadDigest(body: Buffer, chunked: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const headers = chunked ? {} : { 'content-length': String(body.length) };
    const req = httpRequest(
      { host: '127.0.0.1', port, path: '/digest', method: 'POST', headers, agent: false },
      (res) => {
        let answer = '';
        res.setEncoding('utf8').on('data', (text: string) => (answer += text));
        res.on('end', () => resolve(answer));
      },
    );
    req.on('error', reject);
    writeInPieces(req, body, 50_021);
  });
}

/** Writes `body` in pieces of `pieceBytes` (odd sizes, so the proxy's reads never line up with a boundary), honouring backpressure, then ends. */
function writeInPieces(stream: Writable, body: Buffer, pieceBytes: number): void {
  let at = 0;
  const pump = () => {
    while (at < body.length) {
      const piece = body.subarray(at, at + pieceBytes);
      at += piece.length;
      if (!stream.write(piece)) return void stream.once('drain', pump);
    }
    stream.end();
  };
  pump();
}

// The helpers above read `sluice` and `port`: each suite sets them in its `before`, and uvu runs the suites one after another.
for (const entry of entries) {
  const s = suite(`streaming (${entry})`);

  s.before(async () => {
    backend = createServer((req, res) => {
      if (req.url === HEALTH_PATH) return void res.end();
      forwardedSockets.add(req.socket);
      if (req.url?.startsWith('/pattern/')) {
        const [, , mb, chunkedFlag] = req.url.split('/');
        const body = pattern(Number(mb) * MB);
        res.writeHead(200, chunkedFlag === 'chunked' ? {} : { 'content-length': String(body.length) });
        return writeInPieces(res, body, 40_009);
      }
      if (req.url?.startsWith('/download/')) {
        // Writes as fast as the proxy reads: `write` returning false means wait for 'drain'.
        let left = Number(req.url.split('/')[2]) * MB;
        res.writeHead(200, { 'content-length': String(left) });
        const pump = () => {
          while (left > 0) {
            left -= chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      if (req.url === '/digest')
        return void digestSlowly(req).then(({ length, digest }) => res.end(`${length} ${digest}`));
      let received = 0;
      req.on('data', (data: Buffer) => (received += data.length));
      req.on('end', () => res.end(String(received)));
    });
    await new Promise<void>((resolve) => backend!.listen(0, '127.0.0.1', resolve));
    const backendPort = (backend.address() as { port: number }).port;
    // Debug lines: `entered` reads the one that says request hooks loaded.
    sluice = startSluice([
      '-c',
      writeConfig(enter(testConfig([{ port: backendPort }], { workers: 1 }, STEADY_HEALTH), entry)),
      '--log-level',
      'debug',
    ]);
    port = await sluice.port();
    await sluice.waitForLog(transitionTo('healthy'));
    await entered(sluice, entry);
  });

  s.after(async () => {
    await stopSluice(sluice);
    killAll();
    backend?.closeAllConnections();
    backend?.close();
  });

  s(`${entry}: 256 MB up and 256 MB down: complete, and memory bounded rather than proportional`, async () => {
    const before = memory('VmRSS');
    assert.is(await download(64), 64 * MB);
    assert.is(await upload(64), 64 * MB);
    const after64 = memory('VmHWM');
    assert.is(await download(256), 256 * MB);
    assert.is(await upload(256), 256 * MB);
    const after256 = memory('VmHWM');
    assert.ok(after256 - before <= 96 * MB, `peak RSS grew by ${((after256 - before) / MB).toFixed(1)} MB`);
    // The listener's young-generation collection every 8 MB relayed (listener/http1/reclaim.ts) is what
    // keeps it far below that: 24 to 31 MB measured with it, 82 to 93 MB without.
    assert.ok(
      after256 - before <= 60 * MB,
      `peak RSS grew by ${((after256 - before) / MB).toFixed(1)} MB: are dead read buffers being collected?`,
    );
    // Bounded, not proportional: a leak would cost about 190 MB more for 256 MB than for 64 MB. What
    // does vary is garbage: V8 frees the 64 KiB read buffers only when external memory has grown by
    // tens of MB since its last collection, and a 64 MB stream may end before that point or just after
    // it. Measured here on the fast path: 0 to 24 MB; hence 32.
    assert.ok(
      after256 - after64 <= 32 * MB,
      `256 MB cost ${((after256 - after64) / MB).toFixed(1)} MB more than 64 MB`,
    );
  });

  s(
    `${entry}: bodies arrive intact while the client reads slowly: several at once, by length and chunked`,
    async () => {
      // The fast path reads each upstream socket into a buffer of its own and reuses it; bytes still
      // queued for a slow client must never be overwritten by the next read.
      const expected = createHash('sha256')
        .update(pattern(16 * MB))
        .digest('hex');
      const answers = await Promise.all(
        ['/pattern/16', '/pattern/16/chunked', '/pattern/16', '/pattern/16/chunked'].map(slowDigest),
      );
      for (const answer of answers) {
        assert.is(answer.status, 200);
        assert.is(answer.length, 16 * MB);
        assert.is(answer.digest, expected);
      }
    },
  );

  s(
    `${entry}: request bodies arrive intact while the backend reads slowly: several at once, by length and chunked`,
    async () => {
      // Every client socket of a listener thread reads into one shared buffer; body bytes queued for a
      // slow upstream must have been copied out of it before the next read of any client overwrites it.
      const body = pattern(16 * MB);
      const expected = `${body.length} ${createHash('sha256').update(body).digest('hex')}`;
      const answers = await Promise.all([false, true, false, true].map((chunked) => uploadDigest(body, chunked)));
      for (const answer of answers) assert.is(answer, expected);
    },
  );

  s(`${entry}: 200 sequential requests reuse a handful of upstream connections`, async () => {
    forwardedSockets.clear();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 200; i++) {
      const answer = await new Promise<number>((resolve, reject) => {
        httpRequest({ host: '127.0.0.1', port, path: `/upload?n=${i}`, method: 'POST', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        })
          .on('error', reject)
          .end('x');
      });
      assert.is(answer, 200);
    }
    agent.destroy();
    assert.ok(forwardedSockets.size <= 4, `${forwardedSockets.size} upstream connections for 200 requests`);
    assert.is((await get(port, '/upload')).status, 200);
  });

  s.run();
}
