/**
 * Least connections: the backend with the fewest in-flight requests
 * relative to its weight, counted across all listener threads. Ties go round
 * robin (a rotating start), so equal backends share evenly when idle.
 */
import { eligible, type Balancer, type Candidate } from './balancer.ts';
import type { InFlight } from './in-flight.ts';

export class LeastConnections<T extends Candidate> implements Balancer<T> {
  readonly #inFlight: InFlight;
  #candidates: readonly T[] = [];
  #rotation = 0;

  constructor(inFlight: InFlight) {
    this.#inFlight = inFlight;
  }

  reset(candidates: readonly T[]): void {
    this.#candidates = candidates;
  }

  pick(_key?: string, exclude?: ReadonlySet<string>): T | undefined {
    const choices = eligible(this.#candidates, exclude);
    if (choices.length === 0) return undefined;
    const start = this.#rotation++ % choices.length;
    let best: T | undefined;
    let bestLoad = Infinity;
    for (let i = 0; i < choices.length; i++) {
      const candidate = choices[(start + i) % choices.length]!;
      const load = this.#inFlight.get(candidate.slot) / candidate.weight;
      if (load < bestLoad) {
        best = candidate;
        bestLoad = load;
      }
    }
    return best;
  }
}
