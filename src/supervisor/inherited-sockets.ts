/**
 * The inherited-sockets side of a hot restart: how the listening sockets
 * travel to a successor (descriptors, listeners and predecessor in its
 * environment), and, in the successor, which of them each listener thread
 * serves. The other side, starting the successor, is successor.ts.
 */
import { closeSync } from 'node:fs';
import { unsetEnv } from './environment.ts';

const FDS_ENV = 'SLUICE_LISTEN_FDS';
const ADDRESS_ENV = 'SLUICE_LISTEN_ADDRESS';
const PREDECESSOR_ENV = 'SLUICE_PREDECESSOR_PID';

/** The first inherited descriptor: 0-2 are stdio, 3 is the IPC channel. */
export const FIRST_INHERITED_FD = 4;

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

/** The environment that tells a successor about the listeners' sockets, passed in order from FIRST_INHERITED_FD on. */
export function inheritedSocketsEnv(listeners: readonly InheritedListener[]): Record<string, string> {
  const count = listeners.reduce((sum, l) => sum + l.fds.length, 0);
  return {
    [FDS_ENV]: Array.from({ length: count }, (_, index) => FIRST_INHERITED_FD + index).join(','),
    // Which of those descriptors belong to which listener: the first `count` to the first, and so on.
    [ADDRESS_ENV]: JSON.stringify(listeners.map(({ host, port, fds }) => ({ host, port, count: fds.length }))),
    [PREDECESSOR_ENV]: String(process.pid),
  };
}

/** In a successor: the sockets handed over, read once and removed from the environment. */
export function takeInheritedSockets(env: NodeJS.ProcessEnv = process.env): InheritedSockets | undefined {
  const fdList = env[FDS_ENV];
  const address = env[ADDRESS_ENV];
  const predecessor = env[PREDECESSOR_ENV];
  for (const name of [FDS_ENV, ADDRESS_ENV, PREDECESSOR_ENV]) unsetEnv(env, name);
  if (fdList === undefined || !address || !predecessor) return undefined;
  const fds = fdList === '' ? [] : fdList.split(',').map(Number);
  const parsed = JSON.parse(address) as
    { host: string; port: number; count?: number }[] | { host: string; port: number };
  // A predecessor from before listeners existed sent one address for all its descriptors.
  const described = Array.isArray(parsed) ? parsed : [{ ...parsed, count: fds.length }];
  let next = 0;
  const listeners = described.map(({ host, port, count }) => ({
    host,
    port,
    fds: fds.slice(next, (next += count ?? 0)),
  }));
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
export function assignInherited(
  inherited: InheritedSockets,
  specs: readonly { host: string; port: number }[],
  count: number,
): Assignment {
  const unused = new Set(inherited.listeners);
  const matched = specs.map((spec, index) => {
    const candidate = inherited.listeners.find(
      (l, at) => unused.has(l) && l.host === spec.host && (spec.port === 0 ? at === index : l.port === spec.port),
    );
    if (candidate) unused.delete(candidate);
    return candidate;
  });
  for (const listener of unused) for (const fd of listener.fds) closeQuietly(fd);
  return {
    ports: specs.map((spec, index) => matched[index]?.port ?? spec.port),
    fdsOf: (id) => matched.map((l) => (l ? l.fds.filter((_, index) => index % count === id) : null)),
    dropped: [...unused],
  };
}

/** The descriptor may be closed already (the predecessor's copy is what keeps the socket): nothing to report. */
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // EBADF: it was never open here.
  }
}
