// Drive sluice's lifecycle machine with fake actors and a simulated clock:
// no sockets, no threads, no waiting. Run it with any test runner (or none).
import assert from 'node:assert/strict';
import { createActor, fromCallback, SimulatedClock } from 'xstate';
import { lifecycleMachine, transitionInspector, type ListenerCommand, type TransitionRecord } from 'sluice';

// 1. Fake the actors the machine invokes and the effects it names. The listeners
//    actor records the command the machine sends it (CLOSE_LISTENING); the
//    effects record that they ran (the phase announced to the listeners…).
const commands: string[] = [];
const record = (name: string) => () => void commands.push(name);
const machine = lifecycleMachine.provide({
  actors: {
    listeners: fromCallback<ListenerCommand>(({ receive }) => {
      receive((command) => commands.push(command.type));
    }),
  },
  actions: { announceHealthy: record('announceHealthy'), announceDraining: record('announceDraining') },
});

// 2. A simulated clock drives the three delays: startupTimeout, gracePeriod, drainTimeout.
const clock = new SimulatedClock();
const history: TransitionRecord[] = [];
const proxy = createActor(machine, {
  input: { startupTimeoutMs: 10_000, gracePeriodMs: 5_000, drainTimeoutMs: 30_000 },
  clock,
  inspect: transitionInspector(
    (record) => history.push(record),
    () => clock.now(),
  ),
});
proxy.start();

// 3. Play the events the real actors would send.
proxy.send({ type: 'LISTENERS_BOUND' });
proxy.send({ type: 'BACKENDS_CHANGED', healthy: 1, total: 1 });
assert.equal(proxy.getSnapshot().value, 'healthy');
assert.deepEqual(commands, ['announceHealthy']);

proxy.send({ type: 'STOP', signal: 'SIGTERM' });
assert.deepEqual(commands, ['announceHealthy', 'announceDraining']); // /ready is 503 from now on

clock.increment(5_000); // the grace period ends: the listeners close
assert.deepEqual(commands, ['announceHealthy', 'announceDraining', 'CLOSE_LISTENING']);

clock.increment(30_000); // nobody finished: the drain timeout stops it
assert.equal(proxy.getSnapshot().value, 'stopped');
assert.equal(proxy.getSnapshot().context.stopReason, 'drain_timeout');

assert.deepEqual(
  history.map(({ at, from, to, event }) => `${at} ${from} → ${to} (${event})`),
  ['0 starting → healthy (BACKENDS_CHANGED)', '0 healthy → draining (STOP)', '35000 draining → stopped (drainTimeout)'],
);
console.log('lifecycle example passed');
