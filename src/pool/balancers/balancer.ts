/**
 * What every balancing policy offers a listener thread. A balancer is reset
 * with every backend of the latest snapshot that is enabled; `selectable`
 * says which it may choose now (consistent hashing keeps unselectable ones on
 * its ring, so their keys come back when they recover).
 */
export interface Candidate {
  id: string;
  weight: number;
  selectable: boolean;
  /** Index into the shared in-flight counters. */
  slot: number;
}

export interface Balancer<T extends Candidate> {
  reset(candidates: readonly T[]): void;
  /** `key` matters to consistent hashing only; `exclude` skips backends already tried for this request. */
  pick(key: string | undefined, exclude?: ReadonlySet<string>): T | undefined;
}

/** The selectable candidates not excluded. */
export function eligible<T extends Candidate>(candidates: readonly T[], exclude?: ReadonlySet<string>): T[] {
  return candidates.filter((c) => c.selectable && !exclude?.has(c.id));
}
