/**
 * A route's `request_headers` / `response_headers`: remove some headers, then
 * set others. Compiled once per route so that applying them per request is a
 * single pass with no per-call setup.
 */
export interface HeaderEditsConfig {
  set?: Record<string, string>;
  remove?: string[];
}

export interface HeaderEdits {
  /** Name (as configured, sent in that case) and value; at most one entry per name, case-insensitively. */
  readonly set: readonly (readonly [string, string])[];
  /** Lowercase names. */
  readonly remove: ReadonlySet<string>;
}

/** `null` when the config edits nothing, so callers can skip the pass entirely. */
export function compileHeaderEdits(config: HeaderEditsConfig | null | undefined): HeaderEdits | null {
  if (config === null || config === undefined) return null;
  // Keyed by lowercase name: `{ 'X-A': '1', 'x-a': '2' }` is one header, and the later entry wins.
  const set = new Map<string, readonly [string, string]>();
  for (const [name, value] of Object.entries(config.set ?? {})) set.set(name.toLowerCase(), [name, value]);
  const remove = new Set((config.remove ?? []).map((name) => name.toLowerCase()));
  if (set.size === 0 && remove.size === 0) return null;
  return { set: [...set.values()], remove };
}

// Lowercase names of every line a pass drops: the removed ones and those `set` replaces.
// Memoized per edits object (routes compile theirs once), so the hot path allocates only its output.
const droppedByEdits = new WeakMap<HeaderEdits, ReadonlySet<string>>();

function droppedNames(edits: HeaderEdits): ReadonlySet<string> {
  let dropped = droppedByEdits.get(edits);
  if (dropped === undefined) {
    const names = new Set(edits.remove);
    for (const [name] of edits.set) names.add(name.toLowerCase());
    dropped = names;
    droppedByEdits.set(edits, dropped);
  }
  return dropped;
}

/**
 * Flat `[name, value, name, value…]` (as Node's rawHeaders): drops the removed names
 * (case-insensitively), then replaces every line of a set name with one line. Other
 * lines keep their order and case; the set lines come last.
 */
export function editFlatHeaders(flat: readonly string[], edits: HeaderEdits): string[] {
  const dropped = droppedNames(edits);
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    if (dropped.has(flat[i]!.toLowerCase())) continue;
    out.push(flat[i]!, flat[i + 1]!);
  }
  for (const [name, value] of edits.set) out.push(name, value);
  return out;
}

/** The same edits on a Node/undici header map (`{ lowercasename: value }`), in place. */
export function editHeaderMap(map: Record<string, string | string[] | undefined>, edits: HeaderEdits): void {
  for (const name of edits.remove) Reflect.deleteProperty(map, name);
  for (const [name, value] of edits.set) map[name.toLowerCase()] = value;
}
