/**
 * The PID file: taken atomically, refused when a live process owns it,
 * replaced when stale, and removed on exit only if it still names us. Its
 * companion, `<pid file>.json`, says where the proxy can be reached.
 *
 * Taking it is a `link()` of a fully written temporary file: link fails when
 * the name exists, so two starting processes can never both believe they own
 * it, and a reader never sees a half-written file.
 */
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { PidFileLockedError } from '../errors.ts';
import { removeProxyInfo } from './proxy-info.ts';

export function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to someone else — still alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/** An exited process not yet reaped by its parent still answers kill(pid, 0) (Linux: state Z). */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

export type PidFileOutcome = 'created' | 'replaced_stale';

export function acquirePidFile(file: string, pid = process.pid): PidFileOutcome {
  const temporary = `${file}.${pid}.tmp`;
  writeFileSync(temporary, `${pid}\n`, { mode: 0o644 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(temporary, file);
        return attempt === 0 ? 'created' : 'replaced_stale';
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = readPid(file);
      if (owner !== undefined && owner !== pid && isProcessAlive(owner)) throw new PidFileLockedError(file, owner);
      try {
        unlinkSync(file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    throw new Error(`${file}: could not be taken (it keeps reappearing)`);
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      /* gone already: nothing is left to clean up */
    }
  }
}

/**
 * A hot restart's successor takes the PID file over from its predecessor: a
 * rename, so a reader sees either PID, never neither. Refused when the file
 * names another live process.
 */
export function takeOverPidFile(file: string, predecessor: number, pid = process.pid): void {
  const owner = readPid(file);
  if (owner !== undefined && owner !== predecessor && owner !== pid && isProcessAlive(owner))
    throw new PidFileLockedError(file, owner);
  const temporary = `${file}.${pid}.tmp`;
  writeFileSync(temporary, `${pid}\n`, { mode: 0o644 });
  renameSync(temporary, file);
}

/** Removes the PID file and its companion (proxy-info.ts) if they still name `pid`. */
export function releasePidFile(file: string, pid = process.pid): void {
  removeProxyInfo(file, pid);
  if (readPid(file) !== pid) return;
  try {
    unlinkSync(file);
  } catch {
    /* removed already: what releasing it asks for */
  }
}

/**
 * A PID file that names no live process (`sluice stop` on a crashed proxy):
 * removed with its companion, unless it changed since `seen` was read — a
 * proxy starting right now may just have taken it.
 */
export function removeStalePidFile(file: string, seen: string): boolean {
  let now: string;
  try {
    now = readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  if (now !== seen) return false;
  const pid = readPid(file);
  if (pid !== undefined) removeProxyInfo(file, pid);
  try {
    unlinkSync(file);
    return true;
  } catch {
    return false;
  }
}
