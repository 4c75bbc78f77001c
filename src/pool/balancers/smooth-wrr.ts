/**
 * Smooth weighted round robin, as nginx does it: every pick adds each
 * candidate's weight to its current score, takes the highest, and subtracts
 * the total from the winner. Weights 5:1:1 give a a b a c a a — interleaved,
 * never a burst of the heavy backend. State is per listener thread.
 */
import type { Balancer, Candidate } from './balancer.ts';

export class SmoothWeightedRoundRobin<T extends Candidate> implements Balancer<T> {
  #candidates: T[] = [];
  #scores = new Map<string, number>();

  constructor(candidates: readonly T[] = []) {
    this.reset(candidates);
  }

  /** A candidate that stays keeps its score, so the sequence continues smoothly across updates. */
  reset(candidates: readonly T[]): void {
    this.#candidates = candidates.filter((c) => c.selectable);
    const scores = new Map<string, number>();
    for (const c of this.#candidates) scores.set(c.id, this.#scores.get(c.id) ?? 0);
    this.#scores = scores;
  }

  pick(_key?: string, exclude?: ReadonlySet<string>): T | undefined {
    let best: T | undefined;
    let bestScore = -Infinity;
    let total = 0;
    for (const candidate of this.#candidates) {
      if (exclude?.has(candidate.id)) continue;
      const score = (this.#scores.get(candidate.id) ?? 0) + candidate.weight; // reset() gave each a score
      this.#scores.set(candidate.id, score);
      total += candidate.weight;
      if (score > bestScore) {
        best = candidate;
        bestScore = score;
      }
    }
    if (best) this.#scores.set(best.id, bestScore - total);
    return best;
  }
}
