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

/** The listening sockets of one listener, handed over. */
export interface InheritedListener {
  host: string;
  port: number;
  fds: number[];
}

/** Listening sockets a successor inherited, per listener, and from whom. */
export interface InheritedSockets {
  listeners: InheritedListener[];
  predecessorPid: number;
}

export interface SuccessorOptions {
  /** Executable and arguments: the command line this process was started with. */
  command: readonly string[];
  listeners: readonly InheritedListener[];
  /** How long the successor may take to become healthy before it is killed. */
  timeoutMs: number;
}

export function startSuccessor(options: SuccessorOptions): Promise<ChildOutcome> {
  const [executable, ...args] = options.command;
  const fds = options.listeners.flatMap((l) => l.fds);
  const child = spawn(executable!, args, {
    // Its own session: it outlives this process, and a terminal's Ctrl-C meant for us is not for it.
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...fds],
    env: {
      ...process.env,
      npm_lifecycle_event: undefined,
      [REPORT_READY_ENV]: '1',
      [FDS_ENV]: fds.map((_, index) => FIRST_INHERITED_FD + index).join(','),
      // Which of those descriptors belong to which listener: the first `count` to the first, and so on.
      [ADDRESS_ENV]: JSON.stringify(options.listeners.map(({ host, port, fds: own }) => ({ host, port, count: own.length }))),
      [PREDECESSOR_ENV]: String(process.pid),
    },
  });
  child.once('error', () => {}); // a failed spawn also ends in 'exit', reported there
  return waitForReady(child, options.timeoutMs);
}

/** In a successor: the sockets handed over, read once and removed from the environment. */
export function takeInheritedSockets(env: NodeJS.ProcessEnv = process.env): InheritedSockets | undefined {
  const fdList = env[FDS_ENV];
  const address = env[ADDRESS_ENV];
  const predecessor = env[PREDECESSOR_ENV];
  delete env[FDS_ENV];
  delete env[ADDRESS_ENV];
  delete env[PREDECESSOR_ENV];
  if (fdList === undefined || !address || !predecessor) return undefined;
  const fds = fdList === '' ? [] : fdList.split(',').map(Number);
  const parsed = JSON.parse(address) as { host: string; port: number; count?: number }[] | { host: string; port: number };
  // A predecessor from before listeners existed sent one address for all its descriptors.
  const described = Array.isArray(parsed) ? parsed : [{ ...parsed, count: fds.length }];
  let next = 0;
  const listeners = described.map(({ host, port, count }) => ({ host, port, fds: fds.slice(next, (next += count ?? 0)) }));
  return { listeners, predecessorPid: Number(predecessor) };
}

/** What the listener threads of a successor serve: per listener, its port and each thread's inherited sockets. */
export interface Assignment {
  ports: number[];
  /** Per listener: the descriptors thread `id` accepts on (empty: bind once healthy), or null: bind now. */
  fdsOf(id: number): (number[] | null)[];
  /** Inherited listeners no configured one matches: closed here. */
  dropped: InheritedListener[];
}

/**
 * Which inherited sockets each of `count` listener threads serves (spread
 * over them when the thread count changed). A configured listener takes the
 * inherited one on its host and port (port 0: the one at the same place in
 * the list). One with no match is bound anew; inherited sockets no listener
 * takes are closed here, so they close for good once the predecessor closes
 * its copy.
 */
export function assignInherited(inherited: InheritedSockets, specs: readonly { host: string; port: number }[], count: number): Assignment {
  const unused = new Set(inherited.listeners);
  const matched = specs.map((spec, index) => {
    const candidate = inherited.listeners.find(
      (l, at) => unused.has(l) && l.host === spec.host && (spec.port === 0 ? at === index : l.port === spec.port),
    );
    if (candidate) unused.delete(candidate);
    return candidate;
  });
  for (const listener of unused) {
    for (const fd of listener.fds) {
      try {
        closeSync(fd);
      } catch {}
    }
  }
  return {
    ports: specs.map((spec, index) => matched[index]?.port ?? spec.port),
    fdsOf: (id) => matched.map((l) => (l ? l.fds.filter((_, index) => index % count === id) : null)),
    dropped: [...unused],
  };
}
