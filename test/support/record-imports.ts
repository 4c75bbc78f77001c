/**
 * Preloaded with `--import` (worker threads inherit it): records every
 * module each thread loads, with the thread's compile-cache directory, one
 * `threadId<TAB>cacheDir<TAB>url` line each, to SLUICE_TEST_IMPORTS_FILE.
 */
import { appendFileSync } from 'node:fs';
import { getCompileCacheDir, registerHooks } from 'node:module';
import { threadId } from 'node:worker_threads';

const file = process.env['SLUICE_TEST_IMPORTS_FILE'];
if (file) {
  registerHooks({
    load(url, context, next) {
      const loaded = next(url, context);
      appendFileSync(file, `${threadId}\t${getCompileCacheDir() ?? ''}\t${url}\n`);
      return loaded;
    },
  });
}
