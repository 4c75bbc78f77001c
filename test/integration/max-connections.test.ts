/** max_connections is one limit over all listener threads together. */
import { connect, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { until } from '../support/http.ts';
import { exitWithin, killAll, startSluice, transitionTo } from '../support/sluice-process.ts';
import { startUpstream } from '../support/upstream.ts';
import { testConfig, writeConfig } from '../support/config-file.ts';

/** Opens a connection and sends one keep-alive request; resolves 'answered' (socket kept open) or 'closed'. */
function openAndAsk(port: number): Promise<{ socket: Socket; outcome: 'answered' | 'closed' }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      data += chunk;
      if (data.includes('\r\n\r\n') && data.includes('"alive"')) resolve({ socket, outcome: 'answered' });
    });
    socket.on('error', () => {
      /* the test asserts on what the socket received; a reset is one such outcome */
    });
    socket.on('close', () => resolve({ socket, outcome: 'closed' }));
    socket.write('GET /live HTTP/1.1\r\nHost: t\r\n\r\n');
  });
}

test('a connection over the limit is closed at once, existing ones are untouched, capacity returns', async () => {
  const upstream = await startUpstream('a');
  const sluice = startSluice([
    '-c',
    writeConfig(testConfig([{ port: upstream.port }], { workers: 2, max_connections: 3 })),
  ]);
  try {
    const port = await sluice.port();
    await sluice.waitForLog(transitionTo('healthy'));
    const held = [await openAndAsk(port), await openAndAsk(port), await openAndAsk(port)];
    assert.equal(
      held.map((h) => h.outcome),
      ['answered', 'answered', 'answered'],
    );
    // Whichever thread the kernel hands them to, a fourth and fifth are refused.
    for (let i = 0; i < 2; i++) {
      const extra = await openAndAsk(port);
      assert.is(extra.outcome, 'closed');
    }
    // The held connections still work.
    const again = await new Promise<string>((resolve) => {
      held[0]!.socket.removeAllListeners('data');
      held[0]!.socket.once('data', (chunk: string) => resolve(chunk));
      held[0]!.socket.write('GET /live HTTP/1.1\r\nHost: t\r\n\r\n');
    });
    assert.match(again, 'HTTP/1.1 200');
    held[0]!.socket.destroy();
    const next = await until(
      () => openAndAsk(port),
      (r) => {
        if (r.outcome === 'answered') r.socket.destroy();
        return r.outcome === 'answered';
      },
    );
    assert.is(next.outcome, 'answered');
    for (const h of held) h.socket.destroy();
  } finally {
    sluice.kill('SIGTERM');
    await exitWithin(sluice);
    await upstream.close();
    killAll();
  }
});

test.run();
