/**
 * Session-ticket key rotation, driven by a SimulatedClock: every 12 hours a
 * new key encrypts, the previous one still decrypts (and the ticket is
 * renewed under the new key), the one before is dropped. Real TLS
 * handshakes against a TlsFront in this process, whose keys the rotation
 * sets as the supervisor's rotation sets every listener thread's.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SimulatedClock } from 'xstate';
import { TlsFront } from '../../src/listener/tls/tls-front.ts';
import { TicketKeyRing } from '../../src/listener/tls/ticket-keys.ts';
import type { ListenerTls, TicketKeys } from '../../src/protocol.ts';
import {
  TICKET_KEY_BYTES,
  TICKET_KEY_ROTATION_MS,
  TicketKeyRotation,
} from '../../src/supervisor/ticket-key-rotation.ts';
import { testCa, type TestCa } from '../support/certs.ts';

interface Ctx {
  ca?: TestCa;
  front?: TlsFront;
  port?: number;
  ring?: TicketKeyRing;
}
const rotation = suite<Ctx>('ticket-key-rotation');

/** Keys that say which they are: the n-th key made is 48 bytes of n. */
function numberedKeys() {
  let made = 0;
  return () => new Uint8Array(TICKET_KEY_BYTES).fill(++made);
}
const which = (key: Uint8Array | null) => (key === null ? null : key[0]);

rotation.before(async (ctx) => {
  ctx.ca = testCa();
  const leaf = ctx.ca.leaf('site', ['site.test']);
  const tls: ListenerTls = {
    default: {
      cert_file: leaf.cert,
      key_file: leaf.key,
      cert: readFileSync(leaf.cert, 'utf8'),
      key: readFileSync(leaf.key, 'utf8'),
    },
    sni: [],
    min_version: 'TLSv1.2',
    session_tickets: true,
    certificates: [],
  };
  ctx.ring = new TicketKeyRing();
  const answer = (socket: TLSSocket) => socket.end('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n');
  ctx.front = new TlsFront(tls, 5_000, () => undefined, answer, undefined, ctx.ring);
  await new Promise<void>((resolve) => ctx.front!.server.listen(0, '127.0.0.1', resolve));
  ctx.port = (ctx.front.server.address() as AddressInfo).port;
});

rotation.after((ctx) => {
  ctx.front?.server.close();
});

/** A handshake offering `session`: whether it resumed, and the last ticket the server sent. */
function handshake(ctx: Ctx, session?: Buffer): Promise<{ reused: boolean; ticket: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: ctx.port!, ca: ctx.ca!.pem, servername: 'site.test', session });
    let ticket: Buffer | undefined;
    socket.on('session', (next: Buffer) => (ticket = next));
    socket.once('error', reject);
    socket.resume().once('end', () => resolve({ reused: socket.isSessionReused(), ticket }));
  });
}

rotation('each rotation: a new current key, the last one kept to decrypt, the one before dropped', () => {
  const clock = new SimulatedClock();
  const seen: TicketKeys[] = [];
  const keys = new TicketKeyRotation((k) => seen.push(k), undefined, clock, numberedKeys());
  keys.start();
  assert.equal([which(keys.keys.current), which(keys.keys.previous)], [1, null]);
  clock.increment(TICKET_KEY_ROTATION_MS - 1);
  assert.is(seen.length, 0, 'not before 12 hours');
  clock.increment(1);
  assert.equal(
    seen.map((k) => [which(k.current), which(k.previous)]),
    [[2, 1]],
  );
  clock.increment(TICKET_KEY_ROTATION_MS);
  assert.equal([which(keys.keys.current), which(keys.keys.previous)], [3, 2], 'key 1 is gone');
  keys.stop();
  clock.increment(TICKET_KEY_ROTATION_MS);
  assert.is(seen.length, 2, 'stopped: no more rotations');
});

rotation('a successor keeps the schedule: its first rotation is 12 h after the key was made', () => {
  const clock = new SimulatedClock();
  clock.set(10 * 60 * 60 * 1000);
  const inherited = { current: new Uint8Array(48).fill(7), previous: null, createdAt: 0 };
  const keys = new TicketKeyRotation(() => undefined, inherited, clock, numberedKeys());
  keys.start();
  assert.is(which(keys.keys.current), 7);
  clock.increment(2 * 60 * 60 * 1000);
  assert.equal([which(keys.keys.current), which(keys.keys.previous)], [1, 7]);
  assert.is(keys.handover.createdAt, 12 * 60 * 60 * 1000);
  keys.stop();
});

rotation('a ticket resumes after one rotation (and is renewed), not after two', async (ctx) => {
  const clock = new SimulatedClock();
  const keys = new TicketKeyRotation((k) => ctx.ring!.set(k), undefined, clock, numberedKeys());
  ctx.ring!.set(keys.keys);
  keys.start();
  const first = await handshake(ctx);
  assert.is(first.reused, false);
  assert.ok(first.ticket, 'a ticket under key 1');
  assert.is((await handshake(ctx, first.ticket)).reused, true, 'same key: resumed');

  clock.increment(TICKET_KEY_ROTATION_MS);
  const renewed = await handshake(ctx, first.ticket);
  assert.is(renewed.reused, true, 'key 1 is the previous key: it still decrypts');
  assert.ok(renewed.ticket, 'a new ticket, under key 2');

  clock.increment(TICKET_KEY_ROTATION_MS);
  assert.is((await handshake(ctx, first.ticket)).reused, false, 'key 1 is dropped');
  assert.is((await handshake(ctx, renewed.ticket)).reused, true, 'the renewed ticket is under key 2, still kept');
  keys.stop();
});

rotation.run();
