/**
 * The HTTP/2 drain by frame, on connections that speak frames by hand
 * (test/support/h2-raw.ts): GOAWAY(2^31-1) at once on every connection,
 * idle ones included; a PING; on its ACK (or after 1 s), GOAWAY(last stream
 * id); streams up to it complete, later ones get REFUSED_STREAM; the
 * connection closes when its last stream ends. And the rapid-reset guard.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitWithin, killAll, startSluice, transitionTo } from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { testConfig, writeConfig } from '../support/config-file.ts';
import {
  CODE,
  describe,
  FLAG,
  frame,
  FRAME,
  goawayOf,
  headerBlock,
  rawH2,
  requestHeaders,
  rstCodeOf,
  type Frame,
  type RawH2,
} from '../support/h2-raw.ts';
import { get } from '../support/http.ts';

const MAX_ID = 2 ** 31 - 1;
const upstreams: TestUpstream[] = [];

test.after(async () => {
  killAll();
  await Promise.all(upstreams.map((u) => u.close()));
});

async function startH2(proxy: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const a = await startUpstream('a');
  upstreams.push(a);
  const base = testConfig([{ port: a.port }], { workers: 1, grace_period_ms: 100, drain_timeout_ms: 10_000, ...proxy });
  const { listen_host: _h, listen_port: _p, ...rest } = base.proxy;
  const proc = startSluice([
    '-c',
    writeConfig({ ...base, ...extra, proxy: rest, listeners: [{ host: '127.0.0.1', port: 0, http2: true }] }),
  ]);
  const port = await proc.port();
  await proc.waitForLog(transitionTo('healthy'));
  return { a, proc, port };
}

const isGoaway = (last: number) => (f: Frame) => f.type === FRAME.GOAWAY && goawayOf(f).lastStream === last;
const isPing = (f: Frame) => f.type === FRAME.PING && !(f.flags & FLAG.ACK);
const index = (client: RawH2, f: Frame) => client.frames.indexOf(f);

test('drain: GOAWAY 2^31-1, PING, GOAWAY with the last id; that stream completes, a later one is REFUSED_STREAM', async () => {
  const { a, proc, port } = await startH2();
  const busy = await rawH2(port);
  const idle = await rawH2(port);
  const deaf = await rawH2(port);
  deaf.answerPings = false;
  try {
    busy.request(1, requestHeaders('/slow'));
    await a.nextHeld();
    await idle.next((f) => f.type === FRAME.SETTINGS);
    await deaf.next((f) => f.type === FRAME.SETTINGS);
    proc.kill('SIGTERM');

    const first = await busy.next(isGoaway(MAX_ID));
    const ping = await busy.next(isPing);
    const second = await busy.next(isGoaway(1));
    assert.ok(index(busy, first) < index(busy, ping) && index(busy, ping) < index(busy, second), describe(busy.frames));
    assert.is(goawayOf(first).code, CODE.NO_ERROR);
    // A stream opened after the last GOAWAY: refused, so the client may retry it elsewhere.
    busy.request(3, requestHeaders('/after-goaway'));
    const refused = await busy.next((f) => f.type === FRAME.RST_STREAM && f.stream === 3);
    assert.is(rstCodeOf(refused), CODE.REFUSED_STREAM);
    assert.ok(!busy.frames.some((f) => f.type === FRAME.DATA && f.stream === 1), 'the held stream is still open');
    a.release();
    const end = await busy.next((f) => f.type === FRAME.DATA && f.stream === 1 && (f.flags & FLAG.END_STREAM) !== 0);
    await busy.closed;
    assert.ok(index(busy, refused) < index(busy, end));
    // No GOAWAY ever raises the last id it announced.
    const ids = busy.frames.filter((f) => f.type === FRAME.GOAWAY).map((f) => goawayOf(f).lastStream);
    assert.equal(ids.slice(0, 2), [MAX_ID, 1]);
    assert.ok(
      ids.slice(1).every((id) => id === 1),
      describe(busy.frames),
    );
    assert.ok(!a.received.some((r) => r.url === '/after-goaway'), 'the refused stream never reached the upstream');

    // The idle connection got the same sequence, with last id 0, and was closed.
    const idleFirst = await idle.next(isGoaway(MAX_ID));
    const idlePing = await idle.next(isPing);
    const idleSecond = await idle.next(isGoaway(0));
    assert.ok(
      index(idle, idleFirst) < index(idle, idlePing) && index(idle, idlePing) < index(idle, idleSecond),
      describe(idle.frames),
    );
    await idle.closed;
    // A client that never answers the PING gets the second GOAWAY after 1 s.
    const deafFirst = await deaf.next(isGoaway(MAX_ID));
    const deafSecond = await deaf.next(isGoaway(0), 3_000);
    assert.ok(deafSecond.at - deafFirst.at >= 900, `${deafSecond.at - deafFirst.at} ms`);
    assert.is((await exitWithin(proc)).code, 0);
  } finally {
    for (const c of [busy, idle, deaf]) c.close();
  }
});

test('drain timeout: a stream still open is cut and counted in force_closed', async () => {
  const { a, proc, port } = await startH2({ drain_timeout_ms: 500 });
  const busy = await rawH2(port);
  try {
    busy.request(1, requestHeaders('/slow'));
    await a.nextHeld();
    proc.kill('SIGTERM');
    await busy.next(isGoaway(1));
    await busy.closed;
    const timeout = await proc.waitForLog((l) => l.msg === 'Timeout waiting for connections to drain');
    assert.is(timeout['force_closed'], 1);
    assert.is((await exitWithin(proc)).code, 0);
  } finally {
    a.release();
    busy.close();
  }
});

test('rapid reset: a client that resets streams faster than it completes them gets GOAWAY ENHANCE_YOUR_CALM', async () => {
  const { proc, port } = await startH2({}, { admin: { listen_port: 0, token: 'h2-test-token' } });
  const adminPort = (await proc.waitForLog((l) => l['event'] === 'admin.listening'))['port'] as number;
  const attacker = await rawH2(port);
  try {
    await attacker.next((f) => f.type === FRAME.SETTINGS);
    const rst = Buffer.alloc(4);
    rst.writeUInt32BE(CODE.CANCEL);
    // 300 streams, each reset right after its HEADERS: well under nghttp2's own ~1,000.
    for (let id = 1; id < 600; id += 2) {
      attacker.send(
        Buffer.concat([
          frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, headerBlockFor(id)),
          frame(FRAME.RST_STREAM, 0, id, rst),
        ]),
      );
    }
    const goaway = await attacker.next((f) => f.type === FRAME.GOAWAY);
    assert.is(goawayOf(goaway).code, CODE.ENHANCE_YOUR_CALM, describe(attacker.frames));
    await attacker.closed;
    const metrics = await get(adminPort, '/metrics', { headers: { authorization: 'Bearer h2-test-token' } });
    assert.match(metrics.body, /sluice_http2_rapid_reset_total 1\b/);
    // A well-behaved client on another connection is still served.
    const polite = await rawH2(port);
    polite.request(1, requestHeaders('/polite'));
    await polite.next((f) => f.type === FRAME.HEADERS && f.stream === 1);
    polite.close();
  } finally {
    attacker.close();
    proc.kill('SIGTERM');
    await exitWithin(proc);
  }
});

const headerBlockFor = (id: number) => headerBlock(requestHeaders(`/reset/${id}`));

test.run();
