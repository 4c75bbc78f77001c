/**
 * Hot restart (SIGUSR2), as nginx's binary upgrade and Pingora's graceful
 * upgrade: the old process starts its successor with the same command line
 * and hands it the listening sockets themselves, as inherited file
 * descriptors. Both processes then accept from the same kernel sockets, so
 * a connection waiting in an accept queue can never be reset when the old
 * process closes its copy (`reusePort` alone would reset it: see
 * docs/lifecycle.md). The old process drains only once the successor
 * reported healthy; if it never does, the old one keeps serving, untouched.
 *
 * This is the predecessor's side; what the successor does with the sockets
 * is inherited-sockets.ts.
 */
import { spawn } from 'node:child_process';
import { inheritedSocketsEnv, type InheritedListener } from './inherited-sockets.ts';
import { REPORT_READY_ENV, waitForReady, type ChildOutcome } from './ready-channel.ts';

/** An executable and its arguments, as `sluiceCommand` builds it. */
export type CommandLine = readonly [executable: string, ...args: string[]];

export interface SuccessorOptions {
  /** Executable and arguments: the command line this process was started with. */
  command: CommandLine;
  listeners: readonly InheritedListener[];
  /** How long the successor may take to become healthy before it is killed. */
  timeoutMs: number;
}

export function startSuccessor(options: SuccessorOptions): Promise<ChildOutcome> {
  const [executable, ...args] = options.command;
  const fds = options.listeners.flatMap((l) => l.fds);
  const child = spawn(executable, args, {
    // Its own session: it outlives this process, and a terminal's Ctrl-C meant for us is not for it.
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...fds],
    env: {
      ...process.env,
      npm_lifecycle_event: undefined,
      [REPORT_READY_ENV]: '1',
      ...inheritedSocketsEnv(options.listeners),
    },
  });
  child.once('error', reportedOnExit);
  return waitForReady(child, options.timeoutMs);
}

function reportedOnExit(): void {
  // A failed spawn also ends in 'exit', which waitForReady reports.
}
