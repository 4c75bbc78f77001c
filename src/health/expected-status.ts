/** `200`, `[200, 204]` or `"200-399"` → a predicate on status codes. */
export type ExpectedStatus = number | number[] | string;

export function statusMatcher(expected: ExpectedStatus): (status: number) => boolean {
  if (typeof expected === 'number') return (status) => status === expected;
  if (Array.isArray(expected)) {
    const allowed = new Set(expected);
    return (status) => allowed.has(status);
  }
  const [low, high] = expected.split('-').map(Number) as [number, number];
  return (status) => status >= low && status <= high;
}
