/**
 * Consistent hashing on a weighted Ketama ring (the scheme of libketama and
 * nginx's `hash … consistent`): each backend owns ~160 points per average
 * weight, placed by MD5; a key goes to the first point at or after its own
 * hash. Adding or removing one of N backends moves only ~1/N of the keys.
 *
 * Every enabled backend stays on the ring whatever its health: a key whose
 * backend is unselectable walks on to the next selectable owner, and comes
 * back when its backend recovers.
 */
import { createHash } from 'node:crypto';
import type { Balancer, Candidate } from './balancer.ts';

const POINTS_PER_DIGEST = 4;
const DIGESTS_PER_AVERAGE_WEIGHT = 40;

/** The first 32 bits (little-endian) of MD5(text), as Ketama hashes keys. */
export function ketamaHash(text: string): number {
  return createHash('md5').update(text).digest().readUInt32LE(0);
}

export class ConsistentHash<T extends Candidate> implements Balancer<T> {
  #candidates: T[] = [];
  #points = new Uint32Array(0);
  #owners = new Int32Array(0);
  #membership = '';

  reset(candidates: readonly T[]): void {
    this.#candidates = [...candidates].sort((a, b) => (a.id < b.id ? -1 : 1));
    const membership = this.#candidates.map((c) => `${c.id}*${c.weight}`).join(',');
    // Health changes do not move points; only membership and weights rebuild the ring.
    if (membership !== this.#membership) {
      this.#membership = membership;
      this.#build();
    }
  }

  #build(): void {
    const totalWeight = this.#candidates.reduce((sum, c) => sum + c.weight, 0);
    const ring: [number, number][] = [];
    this.#candidates.forEach((candidate, owner) => {
      const digests = Math.max(
        1,
        Math.floor((candidate.weight / totalWeight) * DIGESTS_PER_AVERAGE_WEIGHT * this.#candidates.length),
      );
      for (let d = 0; d < digests; d++) {
        const digest = createHash('md5').update(`${candidate.id}-${d}`).digest();
        for (let p = 0; p < POINTS_PER_DIGEST; p++) ring.push([digest.readUInt32LE(p * 4), owner]);
      }
    });
    ring.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.#points = Uint32Array.from(ring, ([point]) => point);
    this.#owners = Int32Array.from(ring, ([, owner]) => owner);
  }

  pick(key: string | undefined, exclude?: ReadonlySet<string>): T | undefined {
    const size = this.#points.length;
    if (size === 0) return undefined;
    const start = this.#firstPointAtOrAfter(ketamaHash(key ?? ''));
    for (let i = 0; i < size; i++) {
      const candidate = this.#candidates[this.#owners[(start + i) % size]!]!;
      if (candidate.selectable && !exclude?.has(candidate.id)) return candidate;
    }
    return undefined;
  }

  #firstPointAtOrAfter(hash: number): number {
    let low = 0;
    let high = this.#points.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#points[mid]! < hash) low = mid + 1;
      else high = mid;
    }
    return low === this.#points.length ? 0 : low;
  }
}
