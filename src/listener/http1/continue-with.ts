/**
 * Runs a step that may return a promise (a user's hook), then `next` with
 * its result: at once when it returned a plain value, so a synchronous hook
 * adds no microtask turn to the request; after it settles otherwise. A throw
 * or a rejection goes to `fail`, and so does a throw from `next` (a hook's
 * result it could not use).
 */
export function continueWith<T>(
  step: () => T | PromiseLike<T>,
  next: (value: T) => void,
  fail: (error: unknown) => void,
  onAsync?: () => void,
): void {
  let result: T | PromiseLike<T>;
  try {
    result = step();
  } catch (error) {
    return fail(error);
  }
  if (!isThenable(result)) {
    // What the hook returned may still be wrong (a body that is no string): that is the hook's failure, not the thread's.
    try {
      return next(result);
    } catch (error) {
      return fail(error);
    }
  }
  onAsync?.();
  result.then((value) => {
    try {
      next(value);
    } catch (error) {
      fail(error);
    }
  }, fail);
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof value === 'object' && value !== null && typeof (value as PromiseLike<T>).then === 'function';
}
