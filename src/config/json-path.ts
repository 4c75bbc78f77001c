/** `$.proxy.listen_port`, `$.backends[0].address`: where a config error is, as every error line names it. */
export function jsonPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : `${out}.${String(key)}`), '$');
}
