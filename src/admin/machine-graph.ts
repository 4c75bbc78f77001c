/**
 * The lifecycle machine as plain data for the dashboard, taken from the
 * machine definition itself (xstate/graph), so the picture cannot drift.
 */
import { toDirectedGraph, type DirectedGraphNode } from 'xstate/graph';
import { eventName } from '../machines/history.ts';
import { lifecycleMachine } from '../machines/lifecycle.ts';

export interface MachineGraph {
  states: { id: string; key: string; parent: string | null; initial: boolean; final: boolean }[];
  transitions: { source: string; target: string; event: string }[];
}

export function machineGraph(): MachineGraph {
  const graph: MachineGraph = { states: [], transitions: [] };
  const walk = (node: DirectedGraphNode) => {
    for (const child of node.children) {
      const state = child.stateNode;
      const parent = state.parent && state.parent.path.length > 0 ? state.parent.path.join('.') : null;
      graph.states.push({
        id: state.path.join('.'),
        key: state.key,
        parent,
        initial: state.parent?.initial?.target?.[0] === state,
        final: state.type === 'final',
      });
      for (const edge of child.edges) {
        if (edge.source === edge.target) continue;
        graph.transitions.push({ source: edge.source.path.join('.'), target: edge.target.path.join('.'), event: eventName(edge.transition.eventType) });
      }
      for (const t of state.always ?? []) {
        for (const target of t.target ?? []) graph.transitions.push({ source: state.path.join('.'), target: target.path.join('.'), event: `[${String(t.guard ?? 'always')}]` });
      }
      walk(child);
    }
  };
  walk(toDirectedGraph(lifecycleMachine));
  return graph;
}
