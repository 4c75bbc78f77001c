/**
 * The subcommands that talk to a running proxy (`status`, `stop`, `reload`,
 * `restart`, `cache`), kept apart from the proxy run (run.ts): main.ts
 * dispatches here without loading the supervisor, xstate or the actor code,
 * which a command never needs. `sluice restart` is part of a hot restart's
 * time (issue #15), and those imports were a third of it.
 */
import { refuse } from './refuse.ts';
import type { EarlySignals } from './early-signals.ts';

type Command = (argv: readonly string[], out: (line: string) => void) => Promise<number>;

/** Loaded when named: a proxy run never loads them (nor undici, which some use to ask the proxy). */
const commands: Record<string, () => Promise<Command>> = {
  status: async () => (await import('./commands/status.ts')).statusCommand,
  stop: async () => (await import('./commands/stop.ts')).stopCommand,
  reload: async () => (await import('./commands/reload.ts')).reloadCommand,
  restart: async () => (await import('./commands/restart.ts')).restartCommand,
  cache: async () => (await import('./commands/cache.ts')).cacheCommand,
};

/** Whether `argv` names a subcommand rather than a proxy run. */
export function isSubcommand(argv: readonly string[]): boolean {
  return argv[0] !== undefined && Object.hasOwn(commands, argv[0]);
}

/** Runs the subcommand `argv[0]` with the rest of `argv`; its exit code. */
export async function runSubcommand(argv: readonly string[], earlySignals: EarlySignals): Promise<number> {
  // A command ends on SIGTERM/SIGINT as any CLI does: nothing to drain.
  earlySignals.take();
  try {
    const command = await commands[argv[0]!]!();
    return await command(argv.slice(1), (line) => process.stdout.write(`${line}\n`));
  } catch (error) {
    return refuse(error);
  }
}
