/**
 * Which certificate a TLS client gets for the name it sent (SNI), as nginx
 * chooses a server block: the exact name first, then the longest wildcard
 * (`*.example.org` covers every name under example.org, at any depth, but
 * not example.org itself), else none (the listener's own certificate).
 * Pure: built once per certificate set, looked up once per handshake.
 */
export interface SniTable<T> {
  exact: ReadonlyMap<string, T>;
  /** `.example.org` suffixes, longest first. */
  wildcards: readonly (readonly [suffix: string, value: T])[];
}

export function sniTable<T>(entries: readonly { server_names: readonly string[]; value: T }[]): SniTable<T> {
  const exact = new Map<string, T>();
  const wildcards: [string, T][] = [];
  for (const { server_names, value } of entries) {
    for (const name of server_names) {
      const lower = name.toLowerCase();
      if (lower.startsWith('*.')) wildcards.push([lower.slice(1), value]);
      else exact.set(lower, value);
    }
  }
  wildcards.sort((a, b) => b[0].length - a[0].length);
  return { exact, wildcards };
}

export function pickByName<T>(table: SniTable<T>, servername: string): T | undefined {
  // Names are case-insensitive, and a client may send the absolute form (`example.org.`).
  const name = servername.toLowerCase().replace(/\.$/, '');
  const exact = table.exact.get(name);
  if (exact !== undefined) return exact;
  for (const [suffix, value] of table.wildcards) if (name.length > suffix.length && name.endsWith(suffix)) return value;
  return undefined;
}
