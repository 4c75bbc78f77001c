/** Starts the worker thread of one actor: its entry file, name and memory limits. */
import { Worker } from 'node:worker_threads';
import type { ActorKind } from '../protocol.ts';

// This repository runs the .ts sources; the published package runs the built .js.
const extension = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
const entryFiles: Record<ActorKind, URL> = {
  listener: new URL(`../actors/listener.worker.${extension}`, import.meta.url),
  pool: new URL(`../actors/pool.worker.${extension}`, import.meta.url),
  'health-checker': new URL(`../actors/health-checker.worker.${extension}`, import.meta.url),
};

/**
 * The pool and the health checker allocate little and never in bursts: a
 * small young generation (V8's semi-spaces otherwise grow to several MB
 * each) keeps their resident memory down at no cost. Listener threads keep
 * V8's default: under load a small one would mean a scavenge every few
 * requests.
 */
const QUIET_YOUNG_GENERATION_MB = 1;
const limitsOf: Record<ActorKind, { resourceLimits?: { maxYoungGenerationSizeMb: number } }> = {
  listener: {},
  pool: { resourceLimits: { maxYoungGenerationSizeMb: QUIET_YOUNG_GENERATION_MB } },
  'health-checker': { resourceLimits: { maxYoungGenerationSizeMb: QUIET_YOUNG_GENERATION_MB } },
};

export function bootThread(kind: ActorKind, id: number): Worker {
  return new Worker(entryFiles[kind], { name: `sluice-${kind}-${id}`, ...limitsOf[kind] });
}
