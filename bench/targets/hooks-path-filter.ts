/** The bench's requestFilter that reads the path and lets the request through: the common allow-list case. */
import type { Session } from 'sluice';

export function requestFilter(session: Session): undefined {
  if (session.path.startsWith('/blocked')) throw new Error('not in the bench');
  return undefined;
}
