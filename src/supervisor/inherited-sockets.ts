/**
 * The inherited-sockets side of a hot restart: how the listening sockets
 * travel to a successor (descriptors, address and predecessor in its
 * environment), and, in the successor, which of them each listener thread
 * serves. The other side, starting the successor, is successor.ts.
 */
import { closeSync } from 'node:fs';

const FDS_ENV = 'SLUICE_LISTEN_FDS';
const ADDRESS_ENV = 'SLUICE_LISTEN_ADDRESS';
const PREDECESSOR_ENV = 'SLUICE_PREDECESSOR_PID';

/** The first inherited descriptor: 0-2 are stdio, 3 is the IPC channel. */
export const FIRST_INHERITED_FD = 4;

/** Listening sockets a successor inherited, and which address they are bound to. */
export interface InheritedSockets {
  fds: number[];
  host: string;
  port: number;
  predecessorPid: number;
}

/** The environment that tells a successor about `count` sockets passed from FIRST_INHERITED_FD on. */
export function inheritedSocketsEnv(count: number, host: string, port: number): Record<string, string> {
  return {
    [FDS_ENV]: Array.from({ length: count }, (_, index) => FIRST_INHERITED_FD + index).join(','),
    [ADDRESS_ENV]: JSON.stringify({ host, port }),
    [PREDECESSOR_ENV]: String(process.pid),
  };
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
