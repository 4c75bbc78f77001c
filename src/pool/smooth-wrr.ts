/**
 * Smooth weighted round robin, as nginx does it: every pick adds each
 * candidate's weight to its current score, takes the highest, and subtracts
 * the total from the winner. Weights 5:1:1 give a a b a c a a — interleaved,
 * never a burst of the heavy backend.
 */
export interface Weighted {
  id: string;
  weight: number;
}

export class SmoothWeightedRoundRobin<T extends Weighted> {
  #candidates: T[] = [];
  #scores = new Map<string, number>();
  #totalWeight = 0;

  constructor(candidates: readonly T[] = []) {
    this.reset(candidates);
  }

  /** Replace the candidates; a candidate that stays keeps its score, so the sequence continues smoothly. */
  reset(candidates: readonly T[]): void {
    this.#candidates = [...candidates];
    this.#totalWeight = candidates.reduce((sum, c) => sum + c.weight, 0);
    const scores = new Map<string, number>();
    for (const c of candidates) scores.set(c.id, this.#scores.get(c.id) ?? 0);
    this.#scores = scores;
  }

  get size(): number {
    return this.#candidates.length;
  }

  /** The next candidate, or undefined when there is none. `exclude` skips ids already tried. */
  pick(exclude?: ReadonlySet<string>): T | undefined {
    let best: T | undefined;
    let bestScore = -Infinity;
    let total = 0;
    for (const candidate of this.#candidates) {
      if (exclude?.has(candidate.id)) continue;
      const score = this.#scores.get(candidate.id)! + candidate.weight;
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

  get totalWeight(): number {
    return this.#totalWeight;
  }
}
