/**
 * Node's module compile cache, for every thread and for the processes this
 * one starts (a hot restart's successor, a daemon's child): V8 code cache
 * and, for the .ts sources, the type-stripped text, on disk. A warm start
 * neither compiles sluice's modules again nor loads the TypeScript stripper
 * (a WebAssembly module of ~8 MB per thread). Where: NODE_COMPILE_CACHE when
 * set, else Node's default, `node-compile-cache` under os.tmpdir(); entries
 * are keyed by Node version and file content, so a stale one is never used.
 * NODE_DISABLE_COMPILE_CACHE=1 turns it off. Never fatal: a directory that
 * cannot be written only means compiling as before.
 */
import module from 'node:module';

export function enableCompileCache(): void {
  // Older Node (the version check runs first) or a runtime without it.
  if (typeof module.enableCompileCache !== 'function') return;
  const { directory } = module.enableCompileCache();
  // Worker threads and child processes read the variable at their own start: inherited, they use it too.
  if (directory !== undefined) process.env['NODE_COMPILE_CACHE'] = directory;
}
