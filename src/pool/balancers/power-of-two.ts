/**
 * `random`: power of two random choices. Draw two backends at random in
 * proportion to their weights and take the one with fewer in-flight requests
 * per unit of weight. Nearly as good as least connections, without scanning
 * every backend (Mitzenmacher; Envoy's and HAProxy's `random(2)`).
 */
import { eligible, type Balancer, type Candidate } from './balancer.ts';
import type { InFlight } from './in-flight.ts';

export class PowerOfTwoChoices<T extends Candidate> implements Balancer<T> {
  readonly #inFlight: InFlight;
  readonly #random: () => number;
  #candidates: readonly T[] = [];

  constructor(inFlight: InFlight, random: () => number = Math.random) {
    this.#inFlight = inFlight;
    this.#random = random;
  }

  reset(candidates: readonly T[]): void {
    this.#candidates = candidates;
  }

  #weightedDraw(choices: readonly T[], total: number): T {
    let point = this.#random() * total;
    for (const candidate of choices) {
      point -= candidate.weight;
      if (point < 0) return candidate;
    }
    return choices[choices.length - 1]!;
  }

  pick(_key?: string, exclude?: ReadonlySet<string>): T | undefined {
    const choices = eligible(this.#candidates, exclude);
    if (choices.length <= 1) return choices[0];
    const total = choices.reduce((sum, c) => sum + c.weight, 0);
    const first = this.#weightedDraw(choices, total);
    let second = this.#weightedDraw(choices, total);
    // A second draw of the same backend is no choice at all: draw once more.
    if (second === first) second = this.#weightedDraw(choices, total);
    const load = (c: T) => this.#inFlight.get(c.slot) / c.weight;
    return load(second) < load(first) ? second : first;
  }
}
