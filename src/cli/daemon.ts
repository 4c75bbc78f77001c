/**
 * `-d, --daemon`: what systemd's `Type=forking` with `PIDFile=` expects
 * (Pingora calls it daemon_wait_for_ready). The parent starts the same
 * command again as a detached child in its own session, with stdout and
 * stderr going to `log.file` (required: exit 2 without it), waits until the
 * child reports `healthy` over an IPC channel, then exits 0. If the child fails to start,
 * the parent prints the child's error and exits 1.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import { REPORT_READY_ENV, waitForReady } from '../supervisor/ready-channel.ts';

/** The arguments without -d/--daemon: what the child runs. */
export function childArguments(argv: readonly string[]): string[] {
  return argv.filter((arg) => arg !== '-d' && arg !== '--daemon');
}

/** The command line that runs this sluice again with `argv` (the daemon child, a hot restart's successor). */
export function sluiceCommand(argv: readonly string[]): [executable: string, ...args: string[]] {
  return [process.execPath, ...process.execArgv, process.argv[1]!, ...childArguments(argv)];
}

/** The one line a start that failed ends with on stderr: the `-d` parent's, and the foreground run's. */
export function failedToStartLine(message: string): string {
  return `sluice: failed to start: ${message}`;
}

/** A detached child's output must go somewhere that can be read: without `log.file` it would be lost. */
export function daemonLogFile(config: Config, source: string): string {
  if (config.log.file === null)
    throw new ConfigError(
      `${source}: $.log.file: daemon mode needs log.file, where -d sends everything the proxy writes (got null)`,
    );
  return config.log.file;
}

/** `out`: the success line (stdout, as nginx and systemd tools print results); `err`: the failure (stderr). */
export async function startDaemon(
  argv: readonly string[],
  logFile: string,
  out: (line: string) => void,
  err: (line: string) => void,
): Promise<number> {
  mkdirSync(dirname(logFile), { recursive: true });
  const output = openSync(logFile, 'a');
  const [executable, ...args] = sluiceCommand(argv);
  const child = spawn(executable, args, {
    detached: true,
    stdio: ['ignore', output, output, 'ipc'],
    // Not npm's child any more: it must not stop when the npm that ran `-d` exits.
    env: { ...process.env, npm_lifecycle_event: undefined, [REPORT_READY_ENV]: '1' },
  });
  const outcome = await waitForReady(child);
  if (outcome.ok) {
    out(`sluice started (PID: ${outcome.pid})`);
    return 0;
  }
  err(failedToStartLine(outcome.message));
  return 1;
}
