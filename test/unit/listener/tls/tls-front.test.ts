/**
 * The TLS listener's own socket options. Nagle off on every accepted
 * connection, as Node's http server and nginx's tcp_nodelay have it: with
 * it on, a response written after a handshake waited for the client's
 * delayed ACK, and new TLS connections ran at half speed (issue #14's bench).
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TlsFront } from '../../../../src/listener/tls/tls-front.ts';
import { testCa } from '../../../support/certs.ts';

test('the TLS server accepts its connections with Nagle off (noDelay)', () => {
  const leaf = testCa().leaf('site', ['localhost']);
  const pair = {
    cert_file: leaf.cert,
    key_file: leaf.key,
    cert: readFileSync(leaf.cert, 'utf8'),
    key: readFileSync(leaf.key, 'utf8'),
  };
  const tls = { default: pair, sni: [], min_version: 'TLSv1.2' as const, session_tickets: true, certificates: [] };
  // Never listening here: no connection reaches the callbacks.
  const ignore = (socket: { destroy(): void }) => socket.destroy();
  const front = new TlsFront(tls, 5_000, ignore, ignore);
  // net.Server applies it to each accepted socket before the handshake (setNoDelay on its handle).
  assert.is((front.server as unknown as { noDelay: boolean }).noDelay, true);
});

test.run();
