/** `-t`: the cache's directory can be created and written (what the listener threads will open the store in). */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** undefined when it can; otherwise the error code (ENOENT, ENOTDIR, EACCES, ENOSPC, …). */
export function cachePathProblem(path: string): string | undefined {
  const probe = join(path, `.sluice-check-${process.pid}`);
  try {
    mkdirSync(path, { recursive: true });
    writeFileSync(probe, 'check');
    rmSync(probe);
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? 'EIO';
  }
}
