/**
 * `cache_healthy`: the store is open and a probe write and read, made by a
 * background timer (never on the request path), succeeded within 100 ms.
 *
 * LMDB reuses its own free pages, so a small probe write can still succeed
 * on a full disk while a new entry cannot grow the file: a disk with less
 * than PROBE_HEADROOM_BYTES free counts as full (ENOSPC) too. A failed
 * probe closes the store; each later probe opens it again until one passes.
 */
import { statfs } from 'node:fs/promises';

export const PROBE_INTERVAL_MS = 2_000;
export const PROBE_BUDGET_MS = 100;
export const PROBE_HEADROOM_BYTES = 1024 * 1024;

export type ProbeResult = { ok: true } | { ok: false; code: string };

/** Free space at `path` below the headroom: the store cannot grow. */
export async function diskFull(path: string): Promise<boolean> {
  const figures = await statfs(path);
  return figures.bavail * figures.bsize < PROBE_HEADROOM_BYTES;
}

/** Runs `probe`, failing it past the budget. */
export async function timedProbe(probe: () => Promise<void>): Promise<ProbeResult> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<ProbeResult>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, code: 'CACHE_PROBE_SLOW' }), PROBE_BUDGET_MS);
  });
  const run = probe().then(
    (): ProbeResult => ({ ok: true }),
    (error: unknown): ProbeResult => ({ ok: false, code: errorCode(error) }),
  );
  try {
    return await Promise.race([run, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** ENOSPC, MDB_MAP_FULL, …: what a failed store operation says. */
export function errorCode(error: unknown): string {
  const e = error as { code?: unknown; message?: unknown } | null | undefined;
  if (typeof e?.code === 'string') return e.code;
  const message = String(e?.message ?? error);
  if (message.includes('MDB_MAP_FULL')) return 'MDB_MAP_FULL';
  if (/No space left|ENOSPC/i.test(message)) return 'ENOSPC';
  // lmdb-js: the disk refused the commit's pages (EIO or ENOSPC from pwrite; the code is on commitError).
  if (message.includes('Commit failed')) return 'CACHE_WRITE_FAILED';
  return 'CACHE_STORE_FAILED';
}
