/**
 * Turns the lifecycle actor's inspection stream into transition records
 * `{ at, from, to, event }`: one per change of top-level state, and one per
 * reload (healthy → healthy). The supervisor
 * logs them and tests assert their exact sequence.
 */
import type { InspectionEvent } from 'xstate';
import { topLevelState, type LifecycleState } from './lifecycle.ts';

export interface TransitionRecord {
  at: number;
  from: LifecycleState;
  to: LifecycleState;
  event: string;
}

/** `xstate.after.drainTimeout.lifecycle.draining.closing` → `drainTimeout`; other events keep their type. */
export function eventName(type: string): string {
  const delayed = /^xstate\.after\.([^.]+)\./.exec(type);
  return delayed ? delayed[1]! : type;
}

/**
 * An `inspect` callback for `createActor`. `now` is the clock used for `at`
 * (pass the SimulatedClock's `now` in tests).
 */
export function transitionInspector(
  onTransition: (record: TransitionRecord) => void,
  now: () => number = Date.now,
): (event: InspectionEvent) => void {
  let previous: LifecycleState = 'starting';
  return (inspection) => {
    if (inspection.type !== '@xstate.snapshot') return;
    if (inspection.actorRef.sessionId !== inspection.rootId) return;
    const snapshot = inspection.snapshot as { value?: unknown };
    if (snapshot.value === undefined) return;
    const current = topLevelState(snapshot.value);
    // A reload stays in `healthy` but is a transition of its own.
    if (current === previous && !(current === 'healthy' && inspection.event.type === 'RELOAD')) return;
    const record = { at: now(), from: previous, to: current, event: eventName(inspection.event.type) };
    previous = current;
    onTransition(record);
  };
}
