/**
 * Every transition the lifecycle machine defines, as stable keys
 * `source --event--> target`. Tests compare this list with the transitions
 * they exercised, so a transition nobody tests fails the suite.
 */
import type { AnyStateMachine, AnyTransitionDefinition } from 'xstate';
import { allStates, eventOf } from './graph.ts';

export function transitionKey(transition: AnyTransitionDefinition): string {
  const targets = transition.target?.map((node) => node.id).join(',') ?? transition.source.id;
  return `${transition.source.id} --${eventOf(transition) ?? '(always)'}--> ${targets}`;
}

export function allTransitionKeys(machine: AnyStateMachine): string[] {
  const keys = new Set<string>();
  for (const state of allStates(machine))
    for (const transition of state.transitions) keys.add(transitionKey(transition));
  return [...keys].sort();
}
