/**
 * In-flight requests per backend, summed over every listener thread: one
 * Int32 per backend slot in a SharedArrayBuffer, updated with Atomics. This is
 * what least_connections and power-of-two choices compare.
 */
export class InFlight {
  readonly #counts: Int32Array;

  constructor(shared: SharedArrayBuffer) {
    this.#counts = new Int32Array(shared);
  }

  static buffer(slots: number): SharedArrayBuffer {
    return new SharedArrayBuffer(slots * Int32Array.BYTES_PER_ELEMENT);
  }

  get(slot: number): number {
    return Atomics.load(this.#counts, slot);
  }

  acquire(slot: number): void {
    Atomics.add(this.#counts, slot, 1);
  }

  release(slot: number): void {
    Atomics.sub(this.#counts, slot, 1);
  }
}
