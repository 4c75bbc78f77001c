/**
 * Cache keys. An entry is found by the absolute URL the client used
 * (`scheme://host/target`, the host lowercased, the target as sent) and, for
 * a response with Vary, the values of the request headers it names: the
 * variant key `URL NUL name=value NUL …`. Every variant of a URL shares
 * the prefix `URL NUL`, so a purge of the URL finds them all.
 */

export function cacheUrl(proto: string, host: string | undefined, target: string): string {
  return `${proto}://${(host ?? '').toLowerCase()}${target}`;
}

export function variantKey(
  url: string,
  vary: readonly string[],
  headers: Record<string, string> | ((name: string) => string | undefined),
): string {
  let key = `${url}\u0000`;
  for (const name of vary)
    key += `${name}=${(typeof headers === 'function' ? headers(name) : headers[name]) ?? ''}\u0000`;
  return key;
}

/**
 * RFC 9111 §4.4: the target of a successful unsafe request, and the URLs of
 * its Location and Content-Location when they name the same host.
 */
export function invalidatedUrls(
  url: string,
  location: string | undefined,
  contentLocation: string | undefined,
): string[] {
  const urls = [url];
  const base = new URL(url);
  for (const reference of [location, contentLocation]) {
    if (reference === undefined) continue;
    let resolved: URL;
    try {
      resolved = new URL(reference, base);
    } catch {
      continue;
    }
    if (resolved.host.toLowerCase() !== base.host.toLowerCase()) continue;
    urls.push(cacheUrl(base.protocol.slice(0, -1), base.host, `${resolved.pathname}${resolved.search}`));
  }
  return urls;
}

/** A purge's `url`, as an operator writes it: the key of what a client asking for it got. */
export function urlFromOperator(text: string): string {
  const url = new URL(text);
  return cacheUrl(url.protocol.slice(0, -1), url.host, `${url.pathname}${url.search}`);
}
