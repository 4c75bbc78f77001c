/**
 * Request header values read straight from the fast path's head bytes, for
 * a hit: joined as headerObject joins them (several lines → `a, b`), so a
 * variant key made from these equals the one made from header strings.
 */
import { equalsIgnoreCase, NAME_END, NAME_START, SPAN, VALUE_END, VALUE_START } from '../listener/http1/bytes.ts';
import type { RequestHead } from '../listener/http1/request-head.ts';

export function joinedRequestHeader(head: RequestHead, lowercaseName: string): string | undefined {
  const { buffer, spans } = head;
  let value: string | undefined;
  for (let h = 0; h < head.headerCount; h++) {
    const at = h * SPAN;
    if (!equalsIgnoreCase(buffer, spans[at + NAME_START]!, spans[at + NAME_END]!, lowercaseName)) continue;
    const one = buffer.toString('latin1', spans[at + VALUE_START], spans[at + VALUE_END]);
    value = value === undefined ? one : `${value}, ${one}`;
  }
  return value;
}
