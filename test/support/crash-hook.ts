/**
 * Loaded into every actor thread through SLUICE_TEST_HOOKS. SLUICE_TEST_CRASH
 * says which thread crashes and when:
 *   `pool:start`              the pool actor's start throws (it never runs);
 *   `listener:1:on-connect:P` listener 1 listens on loopback port P and throws
 *                             an uncaught error when the test connects to it;
 *   `pool:0:hang-on-connect:P` the pool thread spins forever (a hung actor)
 *                             when the test connects to port P.
 */
import { createServer } from 'node:net';

/** Resolves once the trigger port listens, so the test can connect as soon as the actor has started. */
export default async function inject({ kind, id }: { kind: string; id: number }): Promise<void> {
  const [crashKind, crashId, when, port] = (process.env['SLUICE_TEST_CRASH'] ?? '').split(':');
  if (crashKind !== kind) return;
  if (crashId === 'start') throw new Error(`injected crash of ${kind} at start`);
  if (Number(crashId) !== id) return;
  const trigger = createServer(() => {
    if (when === 'hang-on-connect') for (;;);
    throw new Error(`injected crash of ${kind} ${id}`);
  });
  await new Promise<void>((resolve) => trigger.listen({ host: '127.0.0.1', port: Number(port) }, resolve));
}
