/**
 * An absolute-form target (`http://host/path`, RFC 9112 §3.2.2) as routes
 * match it: its path and query. A reverse proxy routes by path whatever form
 * the client used.
 */
export function originForm(target: string): string {
  if (target.charCodeAt(0) === 0x2f) return target;
  const scheme = target.indexOf('://');
  if (scheme === -1) return target;
  const path = target.indexOf('/', scheme + 3);
  const query = target.indexOf('?', scheme + 3);
  if (path !== -1 && (query === -1 || path < query)) return target.slice(path);
  return query === -1 ? '/' : `/${target.slice(query)}`;
}
