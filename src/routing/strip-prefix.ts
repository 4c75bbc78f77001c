/**
 * `strip_prefix`: the upstream gets the target without the route's path prefix.
 *
 * The prefix is removed by path segment, counted on the prefix and skipped on
 * the raw target, never by comparing characters. Matching decodes only
 * unreserved escapes (`%76` → `v`), which never create or remove a `/` (`%2F`
 * stays encoded), so the decoded path and the raw target have the same
 * segments one to one: `/%76%31/x` matched the prefix `/v1` on its first
 * segment, and the upstream gets the rest exactly as the client sent it, `/x`.
 * A trailing `/` of the prefix is not a segment of its own: `/v1/` strips like `/v1`.
 */

const SLASH = 0x2f;
const QUESTION = 0x3f;

/** `target` (as sent, with query) with the segments of `prefix` removed; the result always starts with `/`. */
export function targetAfterStrip(target: string, prefix: string): string {
  let segments = 0;
  const prefixEnd = prefix.endsWith('/') ? prefix.length - 1 : prefix.length;
  for (let i = 0; i < prefixEnd; i++) if (prefix.charCodeAt(i) === SLASH) segments++;
  if (segments === 0) return target;
  let at = 0; // index of the `/` opening the next segment of the target
  while (segments > 0 && at < target.length) {
    let end = at + 1;
    while (end < target.length && target.charCodeAt(end) !== SLASH && target.charCodeAt(end) !== QUESTION) end++;
    at = end;
    segments--;
    if (at < target.length && target.charCodeAt(at) === QUESTION) break;
  }
  if (at >= target.length) return '/';
  return target.charCodeAt(at) === SLASH ? target.slice(at) : `/${target.slice(at)}`;
}
