/**
 * Preloaded with `--import` in the main thread: records, in order, every
 * module the main thread loads and every worker thread it starts (by the
 * worker's name), one `load<TAB>url` or `spawn<TAB>name` line each, to
 * SLUICE_TEST_SPAWNS_FILE. Tells whether the actor threads boot before the
 * supervisor's modules load.
 */
import { appendFileSync } from 'node:fs';
import { createRequire, registerHooks, syncBuiltinESMExports } from 'node:module';
import { isMainThread } from 'node:worker_threads';

// The CommonJS exports object: its `Worker` can be replaced (an ESM namespace's cannot).
const threads = createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads');

const file = process.env['SLUICE_TEST_SPAWNS_FILE'];
if (file !== undefined && isMainThread) {
  const out = file;
  registerHooks({
    load(url, context, next) {
      const loaded = next(url, context);
      appendFileSync(out, `load\t${url}\n`);
      return loaded;
    },
  });
  const { Worker } = threads;
  class RecordedWorker extends Worker {
    constructor(...args: ConstructorParameters<typeof Worker>) {
      super(...args);
      appendFileSync(out, `spawn\t${args[1]?.name ?? '?'}\n`);
    }
  }
  // The ESM named export `Worker` that sluice imports follows the CommonJS one once synced.
  threads.Worker = RecordedWorker;
  syncBuiltinESMExports();
}
