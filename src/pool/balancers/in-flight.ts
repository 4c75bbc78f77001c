/**
 * In-flight requests per backend, summed over every listener thread: what
 * least_connections and power-of-two choices compare, and what `sluice
 * status` shows.
 *
 * Each listener thread counts in a row of its own in a SharedArrayBuffer
 * (one Int32 per backend slot); readers add the rows up. With one writer per
 * cell a plain increment is safe, where one counter shared by every thread
 * needed `Atomics.add`/`sub` — calls V8 does not inline, 0.7% of the
 * listener's profile. And a restarted listener thread starts its row from
 * zero: the requests its predecessor had counted died with it, where a
 * shared counter kept them counted for good.
 *
 * Layout: Int32 0 holds the slot count; row `t` follows at 1 + t × slots.
 */
export class InFlight {
  readonly #rows: Int32Array[] = [];
  readonly #own: Int32Array;

  static buffer(slots: number, threads = 1): SharedArrayBuffer {
    const shared = new SharedArrayBuffer((1 + slots * threads) * Int32Array.BYTES_PER_ELEMENT);
    new Int32Array(shared)[0] = slots;
    return shared;
  }

  /** `thread`: the listener thread whose row this one writes (readers may leave it out). */
  constructor(shared: SharedArrayBuffer, thread = 0) {
    const slots = new Int32Array(shared)[0]!;
    const threads = (shared.byteLength / Int32Array.BYTES_PER_ELEMENT - 1) / slots;
    for (let t = 0; t < threads; t++)
      this.#rows.push(new Int32Array(shared, (1 + t * slots) * Int32Array.BYTES_PER_ELEMENT, slots));
    if (thread >= threads) throw new RangeError(`listener thread ${thread} has no in-flight row (${threads} rows)`);
    this.#own = this.#rows[thread]!;
  }

  /**
   * The sum over every thread's row. Plain reads of cells other threads
   * write: an aligned Int32 is read whole, and a count a moment old is as
   * good as any for balancing. Never below zero, even while a thread that
   * was replaced still releases what it had counted.
   */
  get(slot: number): number {
    let sum = 0;
    for (const row of this.#rows) sum += row[slot]!;
    return Math.max(0, sum);
  }

  acquire(slot: number): void {
    this.#own[slot]!++;
  }

  release(slot: number): void {
    this.#own[slot]!--;
  }

  /** A listener thread starting (again): nothing it counts is in flight yet. */
  resetOwn(): void {
    this.#own.fill(0);
  }
}
