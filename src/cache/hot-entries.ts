/**
 * What a listener thread keeps of the entries it served lately: the meta
 * decoded, the policy restored, the head's unchanging lines. An entry is
 * known by its stamp (store.ts), read with the value on every hit: an
 * entry rewritten, refreshed or purged by any thread has another stamp or
 * none, so nothing kept here outlives what it was made from. Bodies are
 * not kept: a hit copies them from the memory map into its response.
 */
import type { Route } from '../routing/route-table.ts';
import { editFlatHeaders } from '../routing/header-edits.ts';
import type { EntryMeta } from './entry.ts';
import { restoredPolicy, type Policy } from './policy.ts';
import { STATUS_CODES } from 'node:http';

/** Entries kept per thread; the oldest kept goes first past it. */
const MAX_KEPT = 4096;

export interface HotEntry {
  stamp: number;
  meta: EntryMeta;
  policy: Policy;
  /** Date.now() when this was made, and the entry's age (s) then. */
  madeAt: number;
  ageThen: number;
  /** Date.now() past which the entry is stale. */
  freshUntil: number;
  /** The status line and the stored header lines (with the route's edits), up to Age. */
  prefix: string;
  /** Date.now() of this thread's last recorded use (the LRU write is made at most once a second). */
  touchedAt: number;
}

export class HotEntries {
  readonly #kept = new Map<string, HotEntry>();

  /** `key`: the route's index and the variant key (a route's response edits are in the prefix). */
  get(key: string, stamp: number): HotEntry | undefined {
    const hot = this.#kept.get(key);
    return hot?.stamp === stamp ? hot : undefined;
  }

  make(key: string, stamp: number, meta: EntryMeta, route: Route | undefined): HotEntry {
    const policy = restoredPolicy(meta.policy);
    const now = Date.now();
    const age = policy.age();
    const edits = route?.responseHeaders;
    const headers = edits ? editFlatHeaders(meta.headers, edits) : meta.headers;
    let prefix = `HTTP/1.1 ${meta.status} ${STATUS_CODES[meta.status] ?? 'Unknown'}\r\n`;
    for (let i = 0; i < headers.length; i += 2) prefix += `${headers[i]}: ${headers[i + 1]}\r\n`;
    const hot: HotEntry = {
      stamp,
      meta,
      policy,
      madeAt: now,
      ageThen: age,
      freshUntil: now + (policy.maxAge() - age) * 1000,
      prefix,
      touchedAt: 0,
    };
    this.#kept.delete(key);
    if (this.#kept.size >= MAX_KEPT) {
      // A Map iterates in insertion order, and a used entry is set again: the first is the least recent.
      const oldest = this.#kept.keys().next();
      if (!oldest.done) this.#kept.delete(oldest.value);
    }
    this.#kept.set(key, hot);
    return hot;
  }
}
