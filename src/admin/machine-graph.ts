/**
 * The lifecycle machine as plain data for the dashboard, taken from the
 * machine definition itself (machines/graph.ts), so the picture cannot drift.
 */
import { allStates, eventOf, guardOf, initialChild } from '../machines/graph.ts';
import { eventName } from '../machines/history.ts';
import { lifecycleMachine } from '../machines/lifecycle.ts';

export interface MachineGraph {
  states: { id: string; key: string; parent: string | null; initial: boolean; final: boolean }[];
  transitions: { source: string; target: string; event: string }[];
}

export function machineGraph(): MachineGraph {
  const graph: MachineGraph = { states: [], transitions: [] };
  for (const { node: state, transitions } of allStates(lifecycleMachine)) {
    const parent = state.parent && state.parent.path.length > 0 ? state.parent.path.join('.') : null;
    graph.states.push({
      id: state.path.join('.'),
      key: state.key,
      parent,
      initial: state.parent !== undefined && initialChild(state.parent) === state,
      final: state.type === 'final',
    });
    for (const t of transitions) {
      const event = eventOf(t);
      const label = event !== undefined ? eventName(event) : `[${guardOf(t) ?? 'always'}]`;
      for (const target of t.target ?? []) {
        if (target === state) continue;
        graph.transitions.push({ source: state.path.join('.'), target: target.path.join('.'), event: label });
      }
    }
  }
  return graph;
}
