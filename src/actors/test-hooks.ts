/**
 * Fault injection for tests, off unless `SLUICE_TEST_HOOKS` names a module.
 * Each actor thread imports that module once at start and calls its default
 * export with `{ kind, id }`; a test module uses it to crash a thread on cue
 * (see test/support/crash-hook.ts). Production never sets the variable.
 */
import { pathToFileURL } from 'node:url';
import type { ActorKind } from '../protocol.ts';

export async function runTestHooks(kind: ActorKind, id: number): Promise<void> {
  const module = process.env['SLUICE_TEST_HOOKS'];
  if (!module) return;
  const hooks = (await import(pathToFileURL(module).href)) as {
    default?: (actor: { kind: ActorKind; id: number }) => unknown;
  };
  await hooks.default?.({ kind, id });
}
