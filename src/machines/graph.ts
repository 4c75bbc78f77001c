/**
 * The one walk over the machine's definition: every state, and every
 * transition it defines — on events, after delays, and eventless (`always`),
 * which xstate/graph's `toDirectedGraph` leaves out. The transition list of
 * the tests, the Mermaid diagram of the docs and the dashboard's
 * machine.json are all drawn from it, so they cannot disagree.
 */
import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from 'xstate';

export interface StateInfo {
  node: AnyStateNode;
  /** Child states, in the order the definition gives them. */
  children: StateInfo[];
  /** Its transitions as defined: the ones on events (delays included), then the eventless ones. */
  transitions: AnyTransitionDefinition[];
  /** The named actions run on entering it, in order. */
  entry: string[];
}

function infoOf(node: AnyStateNode): StateInfo {
  return {
    node,
    children: Object.values(node.states as Record<string, AnyStateNode>).map(infoOf),
    transitions: [...[...node.transitions.values()].flat(), ...(node.always ?? [])],
    entry: actionNames(node.entry),
  };
}

/** The machine's root state, with every state below it. */
export function stateTree(machine: AnyStateMachine): StateInfo {
  return infoOf(machine.root);
}

/** Every state below the root, depth first. */
export function allStates(machine: AnyStateMachine): StateInfo[] {
  const states: StateInfo[] = [];
  const walk = (info: StateInfo) => {
    for (const child of info.children) {
      states.push(child);
      walk(child);
    }
  };
  walk(stateTree(machine));
  return states;
}

/**
 * The event a transition waits for. xstate types it loosely and gives an
 * eventless (`always`) transition '' and an initial one null: both are
 * undefined here.
 */
export function eventOf(transition: AnyTransitionDefinition): string | undefined {
  const type: unknown = transition.eventType;
  return typeof type === 'string' && type !== '' ? type : undefined;
}

/** A transition's guard by its name in `setup({ guards })`; 'guard' for an inline one; undefined for none. */
export function guardOf(transition: AnyTransitionDefinition): string | undefined {
  const guard: unknown = transition.guard;
  if (guard === undefined) return undefined;
  return typeof guard === 'string' ? guard : 'guard';
}

/**
 * The initial child a compound state enters, if it has children. xstate
 * gives every state an initial transition, with no target for a leaf.
 */
export function initialChild(node: AnyStateNode): AnyStateNode | undefined {
  const targets: readonly AnyStateNode[] = node.initial.target;
  return targets[0];
}

/**
 * The names of the actions in a definition's list. xstate's own (`xstate.raise`,
 * which arms an `after` delay) are left out: the delays are transitions here.
 */
export function actionNames(actions: readonly unknown[]): string[] {
  const names = actions.map((action) => {
    if (typeof action === 'string') return action;
    if (typeof action === 'function') return (action as { type?: string }).type ?? action.name;
    return String((action as { type?: unknown }).type);
  });
  return names.filter((name) => !name.startsWith('xstate.'));
}
