/**
 * Hot restart (SIGUSR2), as nginx's binary upgrade and Pingora's graceful
 * upgrade: the old process starts its successor with the same command line
 * and hands it the listening sockets themselves, as inherited file
 * descriptors. Both processes then accept from the same kernel sockets, so
 * a connection waiting in an accept queue can never be reset when the old
 * process closes its copy (`reusePort` alone would reset it: see
 * docs/lifecycle.md). The old process drains only once the successor
 * reported healthy; if it never does, the old one keeps serving, untouched.
 */
import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { REPORT_READY_ENV, waitForReady, type ChildOutcome } from './ready-channel.ts';

const FDS_ENV = 'SLUICE_LISTEN_FDS';
const ADDRESS_ENV = 'SLUICE_LISTEN_ADDRESS';
const PREDECESSOR_ENV = 'SLUICE_PREDECESSOR_PID';

/** The first inherited descriptor: 0-2 are stdio, 3 is the IPC channel. */
const FIRST_INHERITED_FD = 4;

/** Listening sockets a successor inherited, and which address they are bound to. */
export interface InheritedSockets {
  fds: number[];
  host: string;
  port: number;
  predecessorPid: number;
}

export interface SuccessorOptions {
  /** Executable and arguments: the command line this process was started with. */
  command: readonly string[];
  fds: readonly number[];
  host: string;
  port: number;
  /** How long the successor may take to become healthy before it is killed. */
  timeoutMs: number;
}

export function startSuccessor(options: SuccessorOptions): Promise<ChildOutcome> {
  const [executable, ...args] = options.command;
  const child = spawn(executable!, args, {
    // Its own session: it outlives this process, and a terminal's Ctrl-C meant for us is not for it.
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...options.fds],
    env: {
      ...process.env,
      npm_lifecycle_event: undefined,
      [REPORT_READY_ENV]: '1',
      [FDS_ENV]: options.fds.map((_, index) => FIRST_INHERITED_FD + index).join(','),
      [ADDRESS_ENV]: JSON.stringify({ host: options.host, port: options.port }),
      [PREDECESSOR_ENV]: String(process.pid),
    },
  });
  child.once('error', () => {}); // a failed spawn also ends in 'exit', reported there
  return waitForReady(child, options.timeoutMs);
}

/** In a successor: the sockets handed over, read once and removed from the environment. */
export function takeInheritedSockets(env: NodeJS.ProcessEnv = process.env): InheritedSockets | undefined {
  const fds = env[FDS_ENV];
  const address = env[ADDRESS_ENV];
  const predecessor = env[PREDECESSOR_ENV];
  delete env[FDS_ENV];
  delete env[ADDRESS_ENV];
  delete env[PREDECESSOR_ENV];
  if (!fds || !address || !predecessor) return undefined;
  const { host, port } = JSON.parse(address) as { host: string; port: number };
  return { fds: fds.split(',').map(Number), host, port, predecessorPid: Number(predecessor) };
}

/**
 * Which inherited sockets each of `count` listener threads serves (spread
 * over them when the thread count changed). Undefined when the config now
 * asks for another address: the inherited sockets are closed here, so they
 * close for good once the predecessor closes its copy, and the new address
 * is bound instead.
 */
export function assignInherited(inherited: InheritedSockets, host: string, port: number, count: number): { port: number; fdsOf(id: number): number[] } | undefined {
  if (inherited.host === host && (port === 0 || port === inherited.port)) {
    return { port: inherited.port, fdsOf: (id) => inherited.fds.filter((_, index) => index % count === id) };
  }
  for (const fd of inherited.fds) {
    try {
      closeSync(fd);
    } catch {}
  }
  return undefined;
}
