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
import type { Writable } from 'node:stream';
import { FIRST_INHERITED_FD, inheritedSocketsEnv, type InheritedListener } from './inherited-sockets.ts';
import { REPORT_READY_ENV, waitForReady, type ChildOutcome } from './ready-channel.ts';
import { sendTicketKeys, ticketKeysEnv } from './ticket-key-handover.ts';
import type { HandedOverKeys } from './ticket-key-rotation.ts';

/** An executable and its arguments, as `sluiceCommand` builds it. */
export type CommandLine = readonly [executable: string, ...args: string[]];

export interface SuccessorOptions {
  /** Executable and arguments: the command line this process was started with. */
  command: CommandLine;
  listeners: readonly InheritedListener[];
  /** The session-ticket keys: the successor's clients resume the sessions made here. */
  ticketKeys: HandedOverKeys;
  /** How long the successor may take to become healthy before it is killed. */
  timeoutMs: number;
}

export function startSuccessor(options: SuccessorOptions): Promise<ChildOutcome> {
  const [executable, ...args] = options.command;
  const fds = options.listeners.flatMap((l) => l.fds);
  // After the listening sockets, which keep their numbers: a pipe that carries the ticket keys.
  const keysFd = FIRST_INHERITED_FD + fds.length;
  const child = spawn(executable, args, {
    // Its own session: it outlives this process, and a terminal's Ctrl-C meant for us is not for it.
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...fds, 'pipe'],
    env: {
      ...process.env,
      npm_lifecycle_event: undefined,
      [REPORT_READY_ENV]: '1',
      ...inheritedSocketsEnv(options.listeners),
      ...ticketKeysEnv(keysFd),
    },
  });
  child.once('error', reportedOnExit);
  const keysPipe = child.stdio[keysFd] as Writable | null | undefined;
  if (keysPipe) sendTicketKeys(keysPipe, options.ticketKeys);
  return waitForReady(child, options.timeoutMs);
}

function reportedOnExit(): void {
  // A failed spawn also ends in 'exit', which waitForReady reports.
}
