/**
 * Loaded into every actor thread through SLUICE_TEST_HOOKS. SLUICE_TEST_CRASH
 * says which thread crashes and when:
 *   `pool:start`              the pool thread throws as soon as it starts;
 *   `listener:1:on-connect:P` listener 1 listens on loopback port P and throws
 *                             an uncaught error when the test connects to it;
 *   `pool:0:hang-on-connect:P` the pool thread spins forever (a hung actor)
 *                             when the test connects to port P.
 */
import { createServer } from 'node:net';

export default function inject({ kind, id }: { kind: string; id: number }): void {
  const [crashKind, crashId, when, port] = (process.env['SLUICE_TEST_CRASH'] ?? '').split(':');
  if (crashKind !== kind) return;
  if (crashId === 'start') {
    setImmediate(() => {
      throw new Error(`injected crash of ${kind} at start`);
    });
    return;
  }
  if (Number(crashId) !== id) return;
  const trigger = createServer(() => {
    if (when === 'hang-on-connect') for (;;);
    throw new Error(`injected crash of ${kind} ${id}`);
  });
  trigger.listen({ host: '127.0.0.1', port: Number(port) });
}
