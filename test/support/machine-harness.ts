/**
 * Runs the lifecycle machine with fake actors and a SimulatedClock, records
 * its transitions, its effects (fakes of its named actions) and the commands
 * it sends to the listeners, and notes every machine transition taken so the
 * suite can prove it covered them all.
 */
import { createActor, fromCallback, SimulatedClock } from 'xstate';
import { lifecycleMachine, type LifecycleInput, type ListenerCommand } from '../../src/machines/lifecycle.ts';
import { transitionInspector, type TransitionRecord } from '../../src/machines/history.ts';
import { transitionKey } from '../../src/machines/transitions.ts';

export const exercisedTransitions = new Set<string>();

/** The machine's effects, which the supervisor provides (`.provide({ actions })`). */
export const effectNames = [
  'handOverPidFile',
  'writeProxyInfo',
  'announceHealthy',
  'announceDraining',
  'announceStopped',
  'reportReady',
  'runOnStop',
] as const;
export type EffectName = (typeof effectNames)[number];

export const defaultInput: LifecycleInput = { startupTimeoutMs: 10_000, gracePeriodMs: 0, drainTimeoutMs: 30_000 };

export function runMachine(input: Partial<LifecycleInput> = {}) {
  const clock = new SimulatedClock();
  const history: TransitionRecord[] = [];
  const listenerCommands: ListenerCommand['type'][] = [];
  const effects: EffectName[] = [];
  const fakeEffect = (name: EffectName) => () => void effects.push(name);
  const machine = lifecycleMachine.provide({
    actors: {
      listeners: fromCallback<ListenerCommand>(({ receive }) => {
        receive((command) => listenerCommands.push(command.type));
      }),
    },
    actions: Object.fromEntries(effectNames.map((name) => [name, fakeEffect(name)])),
  });
  const recordTransition = transitionInspector(
    (record) => history.push(record),
    () => clock.now(),
  );
  const actor = createActor(machine, {
    input: { ...defaultInput, ...input },
    clock,
    inspect: (event) => {
      recordTransition(event);
      if (event.type === '@xstate.microstep')
        for (const t of event._transitions) exercisedTransitions.add(transitionKey(t));
    },
  });
  actor.start();
  const state = () => actor.getSnapshot().value;
  const path = () => history.map((r) => `${r.from}->${r.to}:${r.event}`);
  /** Bound listeners and one healthy backend: the usual way into `healthy`. */
  const becomeHealthy = () => {
    actor.send({ type: 'LISTENERS_BOUND' });
    actor.send({ type: 'BACKENDS_CHANGED', healthy: 1, total: 1 });
  };
  /** The effects run since the last call. */
  const takeEffects = () => effects.splice(0);
  return { actor, clock, history, listenerCommands, effects, takeEffects, state, path, becomeHealthy };
}
