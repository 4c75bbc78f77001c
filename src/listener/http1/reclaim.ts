/**
 * Freeing the buffers a long stream leaves behind. Every socket read is a
 * Buffer whose 64 KiB live outside V8's heap while its JS object is about a
 * hundred bytes, so a stream of 256 MB makes a few MB of objects: V8's young
 * generation hardly fills, and it collects the dead buffers only once
 * external memory has grown by tens of MB. That garbage is what the
 * process's RSS shows. A young-generation collection (about 1 ms) after
 * every RECLAIM_EVERY_BYTES relayed keeps it to that much.
 *
 * `gc` is V8's own, reached through a fresh context after `--expose-gc`
 * (the flag is process-wide but only new contexts get the function: no
 * global `gc` appears anywhere).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export const RECLAIM_EVERY_BYTES = 8 * 1024 * 1024;

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as (options: { type: 'minor' }) => void;

let sinceLast = 0;

/** Body bytes just relayed (either way) by this thread. */
export function relayed(bytes: number): void {
  sinceLast += bytes;
  if (sinceLast < RECLAIM_EVERY_BYTES) return;
  sinceLast = 0;
  collect({ type: 'minor' });
}
