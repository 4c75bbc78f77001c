/**
 * Every transition the lifecycle machine defines, as stable keys
 * `source --event--> target`. Tests compare this list with the transitions
 * they exercised, so a transition nobody tests fails the suite.
 */
import type { AnyStateMachine, AnyTransitionDefinition } from 'xstate';
import { toDirectedGraph, type DirectedGraphNode } from 'xstate/graph';

export function transitionKey(transition: AnyTransitionDefinition): string {
  const targets = transition.target?.map((node) => node.id).join(',') ?? transition.source.id;
  return `${transition.source.id} --${transition.eventType || '(always)'}--> ${targets}`;
}

export function allTransitionKeys(machine: AnyStateMachine): string[] {
  const keys = new Set<string>();
  const walk = (node: DirectedGraphNode) => {
    for (const edge of node.edges) keys.add(transitionKey(edge.transition));
    // toDirectedGraph leaves out eventless (`always`) transitions.
    for (const transition of node.stateNode.always ?? []) keys.add(transitionKey(transition));
    node.children.forEach(walk);
  };
  walk(toDirectedGraph(machine));
  return [...keys].sort();
}
