/**
 * How the session-ticket keys reach a hot restart's successor: through a
 * pipe of their own, inherited after the listening sockets, which the
 * predecessor writes once and closes. Its descriptor number is in the
 * successor's environment; the keys never are (an environment can be read
 * in /proc for as long as the process lives, and is passed on to children).
 */
import { closeSync, readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { TICKET_KEY_BYTES, type HandedOverKeys } from './ticket-key-rotation.ts';

const KEYS_FD_ENV = 'SLUICE_TICKET_KEYS_FD';

interface WireKeys {
  current: string;
  previous: string | null;
  created_at: number;
}

/** The environment that tells the successor which inherited descriptor carries the keys. */
export function ticketKeysEnv(fd: number): Record<string, string> {
  return { [KEYS_FD_ENV]: String(fd) };
}

/** In the predecessor: the keys into the successor's end of the pipe, then the pipe closed. */
export function sendTicketKeys(pipe: Writable, keys: HandedOverKeys): void {
  const wire: WireKeys = {
    current: Buffer.from(keys.current).toString('base64'),
    previous: keys.previous && Buffer.from(keys.previous).toString('base64'),
    created_at: keys.createdAt,
  };
  // The successor reads until the end: a predecessor that dies before writing gives it none, never a hang.
  pipe.on('error', () => {
    // EPIPE: the successor died before reading; its failure is reported by waitForReady.
  });
  pipe.end(JSON.stringify(wire));
}

/**
 * In a successor: the predecessor's keys, read once (the predecessor has
 * written them, or closes the pipe by exiting), then the descriptor closed.
 * Undefined when none were handed over or they are unusable: new keys are
 * made, and clients make new sessions.
 */
export function takeTicketKeys(env: NodeJS.ProcessEnv = process.env): HandedOverKeys | undefined {
  const fdText = env[KEYS_FD_ENV];
  Reflect.deleteProperty(env, KEYS_FD_ENV);
  if (fdText === undefined) return undefined;
  const fd = Number(fdText);
  try {
    return parseKeys(readFileSync(fd, 'utf8'));
  } catch {
    return undefined;
  } finally {
    try {
      closeSync(fd);
    } catch {
      // EBADF: not inherited after all.
    }
  }
}

function parseKeys(text: string): HandedOverKeys | undefined {
  const wire = JSON.parse(text) as Partial<WireKeys>;
  const key = (value: unknown) => {
    if (typeof value !== 'string') return undefined;
    const bytes = Buffer.from(value, 'base64');
    return bytes.length === TICKET_KEY_BYTES ? bytes : undefined;
  };
  const current = key(wire.current);
  if (!current || typeof wire.created_at !== 'number') return undefined;
  return { current, previous: key(wire.previous) ?? null, createdAt: wire.created_at };
}
