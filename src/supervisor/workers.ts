import { availableParallelism } from 'node:os';

/** `workers: 0` means one listener thread per available CPU. */
export const listenerThreadCount = (configured: number): number =>
  configured > 0 ? configured : availableParallelism();
