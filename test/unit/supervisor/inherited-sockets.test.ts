/** A hot-restart successor's inherited sockets: which listener takes which descriptors. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assignInherited, takeInheritedSockets } from '../../../src/supervisor/inherited-sockets.ts';

test('hot restart: each listener takes its own inherited sockets; unmatched ones are bound anew', () => {
  const env: NodeJS.ProcessEnv = {
    SLUICE_LISTEN_FDS: '4,5,6',
    SLUICE_LISTEN_ADDRESS: JSON.stringify([
      { host: '127.0.0.1', port: 80, count: 2 },
      { host: '127.0.0.1', port: 443, count: 1 },
    ]),
    SLUICE_PREDECESSOR_PID: '42',
  };
  const inherited = takeInheritedSockets(env)!;
  assert.equal(inherited.listeners, [
    { host: '127.0.0.1', port: 80, fds: [4, 5] },
    { host: '127.0.0.1', port: 443, fds: [6] },
  ]);
  const assigned = assignInherited(
    inherited,
    [
      { host: '127.0.0.1', port: 443 },
      { host: '127.0.0.1', port: 80 },
      { host: '127.0.0.1', port: 81 },
    ],
    2,
  );
  assert.equal(assigned.ports, [443, 80, 81]);
  assert.equal(assigned.fdsOf(0), [[6], [4], null]);
  assert.equal(assigned.fdsOf(1), [[], [5], null]);
  // The environment of a predecessor from before listeners: one address for every descriptor.
  const old = takeInheritedSockets({
    SLUICE_LISTEN_FDS: '4,5',
    SLUICE_LISTEN_ADDRESS: '{"host":"0.0.0.0","port":8080}',
    SLUICE_PREDECESSOR_PID: '7',
  })!;
  assert.equal(old.listeners, [{ host: '0.0.0.0', port: 8080, fds: [4, 5] }]);
});

test.run();
