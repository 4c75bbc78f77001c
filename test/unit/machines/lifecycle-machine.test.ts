/** The lifecycle machine alone: fake actors, SimulatedClock, no sockets, no threads. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitCodeOf, lifecycleMachine, lifecycleStates } from '../../../src/machines/lifecycle.ts';
import { actionNames, allStates, eventOf, stateTree } from '../../../src/machines/graph.ts';
import { eventName } from '../../../src/machines/history.ts';
import { allTransitionKeys } from '../../../src/machines/transitions.ts';
import { effectNames, exercisedTransitions, runMachine } from '../../support/machine-harness.ts';

const context = (m: ReturnType<typeof runMachine>) => m.actor.getSnapshot().context;

test('starting waits for both bound listeners and a healthy backend, in either order', () => {
  const a = runMachine();
  a.actor.send({ type: 'LISTENERS_BOUND' });
  assert.is(a.state(), 'starting');
  a.actor.send({ type: 'BACKENDS_CHANGED', healthy: 1, total: 2 });
  assert.is(a.state(), 'healthy');

  const b = runMachine();
  b.actor.send({ type: 'BACKENDS_CHANGED', healthy: 1, total: 1 });
  assert.is(b.state(), 'starting');
  b.actor.send({ type: 'LISTENERS_BOUND' });
  assert.is(b.state(), 'healthy');
  assert.equal(b.path(), ['starting->healthy:LISTENERS_BOUND']);
});

test('a published set with no healthy backend keeps starting', () => {
  const m = runMachine();
  m.actor.send({ type: 'LISTENERS_BOUND' });
  m.actor.send({ type: 'BACKENDS_CHANGED', healthy: 0, total: 3 });
  assert.is(m.state(), 'starting');
});

test('startup timeout fires at exactly startup_timeout_ms and exits 1', () => {
  const m = runMachine({ startupTimeoutMs: 5_000 });
  m.actor.send({ type: 'LISTENERS_BOUND' });
  m.clock.increment(4_999);
  assert.is(m.state(), 'starting');
  m.clock.increment(1);
  assert.is(m.state(), 'stopped');
  assert.is(context(m).stopReason, 'startup_timeout');
  assert.is(context(m).failure?.code, 'SLUICE_STARTUP_TIMEOUT');
  assert.is(exitCodeOf(context(m)), 1);
  assert.equal(m.path(), ['starting->stopped:startupTimeout']);
  assert.is(m.history[0]!.at, 5_000);
});

test('require_healthy_backends false: healthy once the listeners are bound, with no backend passing', () => {
  const m = runMachine({ startupTimeoutMs: 5_000, requireHealthyBackends: false });
  m.actor.send({ type: 'BACKENDS_CHANGED', healthy: 0, total: 3 });
  assert.is(m.state(), 'starting', 'the listeners are not bound yet');
  m.actor.send({ type: 'LISTENERS_BOUND' });
  assert.is(m.state(), 'healthy');
  assert.equal(m.path(), ['starting->healthy:LISTENERS_BOUND']);
  // It keeps serving past the startup timeout, and losing or gaining backends keeps it healthy.
  m.clock.increment(60_000);
  m.actor.send({ type: 'BACKENDS_CHANGED', healthy: 1, total: 3 });
  m.actor.send({ type: 'BACKENDS_CHANGED', healthy: 0, total: 3 });
  assert.is(m.state(), 'healthy');
  assert.is(context(m).stopReason, null);
});

test('require_healthy_backends false: listeners not bound in time still time out, saying so', () => {
  const m = runMachine({ startupTimeoutMs: 5_000, requireHealthyBackends: false });
  m.clock.increment(5_000);
  assert.is(m.state(), 'stopped');
  assert.is(context(m).stopReason, 'startup_timeout');
  assert.equal(context(m).failure, { code: 'SLUICE_STARTUP_TIMEOUT', message: 'listeners not bound within 5000 ms' });
});

test('require_healthy_backends defaults to true: bound listeners alone keep starting', () => {
  const m = runMachine({ startupTimeoutMs: 5_000 });
  m.actor.send({ type: 'LISTENERS_BOUND' });
  m.actor.send({ type: 'BACKENDS_CHANGED', healthy: 0, total: 1 });
  assert.is(m.state(), 'starting');
  assert.is(context(m).requireHealthyBackends, true);
  m.clock.increment(5_000);
  assert.equal(context(m).failure?.message, 'no healthy backend within 5000 ms');
});

test('the startup timer is cancelled once healthy', () => {
  const m = runMachine({ startupTimeoutMs: 5_000 });
  m.becomeHealthy();
  m.clock.increment(60_000);
  assert.is(m.state(), 'healthy');
});

test('a signal during starting stops at once with exit 0', () => {
  const m = runMachine();
  m.actor.send({ type: 'STOP', signal: 'SIGTERM' });
  assert.is(m.state(), 'stopped');
  assert.is(context(m).stopReason, 'signal_during_startup');
  assert.is(exitCodeOf(context(m)), 0);
});

test('a listen failure during starting stops with exit 1 and keeps the reason', () => {
  const m = runMachine();
  m.actor.send({ type: 'LISTEN_FAILED', cause: 'EADDRINUSE', message: 'port 8080 in use' });
  assert.is(m.state(), 'stopped');
  assert.equal(context(m).failure, { code: 'SLUICE_LISTEN_FAILED', cause: 'EADDRINUSE', message: 'port 8080 in use' });
  assert.is(exitCodeOf(context(m)), 1);
});

test('a worker failure during starting stops with exit 1', () => {
  const m = runMachine();
  m.actor.send({ type: 'WORKER_FAILED', actor: 'pool', id: 0, message: 'boom' });
  assert.is(m.state(), 'stopped');
  assert.is(context(m).stopReason, 'worker_failed');
  assert.is(context(m).failure?.actor, 'pool');
  assert.is(exitCodeOf(context(m)), 1);
});

test('losing every backend while healthy keeps the state (readiness reports it)', () => {
  const m = runMachine();
  m.becomeHealthy();
  m.actor.send({ type: 'BACKENDS_CHANGED', healthy: 0, total: 1 });
  assert.is(m.state(), 'healthy');
  assert.is(context(m).healthyBackends, 0);
});

test('drain: announced at once, CLOSE_LISTENING only after the grace period, stopped when drained', () => {
  const m = runMachine({ gracePeriodMs: 3_000 });
  m.becomeHealthy();
  m.takeEffects();
  m.actor.send({ type: 'STOP', signal: 'SIGTERM' });
  assert.equal(m.state(), { draining: 'grace' });
  assert.equal(m.takeEffects(), ['announceDraining']);
  assert.equal(m.listenerCommands, []);
  // Connections ending during the grace period do not end it: the proxy keeps accepting.
  m.actor.send({ type: 'CONNECTIONS_DRAINED' });
  m.clock.increment(2_999);
  assert.equal(m.state(), { draining: 'grace' });
  m.clock.increment(1);
  assert.equal(m.state(), { draining: 'closing' });
  assert.equal(m.listenerCommands, ['CLOSE_LISTENING']);
  assert.equal(m.takeEffects(), [], 'announced once: the phase does not change inside draining');
  m.actor.send({ type: 'CONNECTIONS_DRAINED' });
  assert.is(m.state(), 'stopped');
  assert.is(context(m).stopReason, 'drained');
  assert.is(exitCodeOf(context(m)), 0);
  assert.equal(m.path(), [
    'starting->healthy:BACKENDS_CHANGED',
    'healthy->draining:STOP',
    'draining->stopped:CONNECTIONS_DRAINED',
  ]);
});

test('drain timeout counts from the end of the grace period and exits 0', () => {
  const m = runMachine({ gracePeriodMs: 1_000, drainTimeoutMs: 4_000 });
  m.becomeHealthy();
  m.actor.send({ type: 'STOP', signal: 'SIGINT' });
  // SimulatedClock starts a timer set during increment() at the increment's end: step through.
  m.clock.increment(1_000);
  assert.equal(m.state(), { draining: 'closing' });
  m.clock.increment(3_999);
  assert.equal(m.state(), { draining: 'closing' });
  m.clock.increment(1);
  assert.is(m.state(), 'stopped');
  assert.is(context(m).stopReason, 'drain_timeout');
  assert.is(exitCodeOf(context(m)), 0);
  assert.equal(m.path().at(-1), 'draining->stopped:drainTimeout');
});

test('a second signal during the grace period stops at once', () => {
  const m = runMachine({ gracePeriodMs: 10_000 });
  m.becomeHealthy();
  m.actor.send({ type: 'STOP', signal: 'SIGTERM' });
  m.actor.send({ type: 'STOP', signal: 'SIGTERM' });
  assert.is(m.state(), 'stopped');
  assert.is(context(m).stopReason, 'second_signal');
  assert.is(exitCodeOf(context(m)), 0);
});

test('a second signal while connections finish stops at once', () => {
  const m = runMachine();
  m.becomeHealthy();
  m.actor.send({ type: 'STOP', signal: 'SIGTERM' });
  m.clock.increment(0);
  assert.equal(m.state(), { draining: 'closing' });
  m.actor.send({ type: 'STOP', signal: 'SIGINT' });
  assert.is(m.state(), 'stopped');
  assert.is(context(m).stopReason, 'second_signal');
});

test('a worker failure while healthy drains the rest and exits 1', () => {
  const m = runMachine();
  m.becomeHealthy();
  m.takeEffects();
  m.actor.send({ type: 'WORKER_FAILED', actor: 'listener', id: 1, message: 'thread exited with code 1' });
  assert.equal(m.state(), { draining: 'grace' });
  assert.equal(m.takeEffects(), ['announceDraining']);
  m.clock.increment(0);
  m.actor.send({ type: 'CONNECTIONS_DRAINED' });
  assert.is(m.state(), 'stopped');
  assert.is(exitCodeOf(context(m)), 1);
});

test('a worker failure while draining keeps draining and makes the exit code 1', () => {
  const m = runMachine({ gracePeriodMs: 100 });
  m.becomeHealthy();
  m.actor.send({ type: 'STOP', signal: 'SIGTERM' });
  m.actor.send({ type: 'WORKER_FAILED', actor: 'health-checker', id: 0, message: 'boom' });
  assert.equal(m.state(), { draining: 'grace' });
  m.clock.increment(100);
  m.actor.send({ type: 'CONNECTIONS_DRAINED' });
  assert.is(m.state(), 'stopped');
  assert.is(context(m).stopReason, 'drained');
  assert.is(exitCodeOf(context(m)), 1);
});

test('a reload is recorded as healthy → healthy and its delays apply to the next drain', () => {
  const m = runMachine({ gracePeriodMs: 1_000, drainTimeoutMs: 1_000 });
  m.becomeHealthy();
  m.actor.send({ type: 'RELOAD', timeouts: { startupTimeoutMs: 10_000, gracePeriodMs: 50, drainTimeoutMs: 200 } });
  assert.is(m.state(), 'healthy');
  assert.equal(m.path(), ['starting->healthy:BACKENDS_CHANGED', 'healthy->healthy:RELOAD']);
  m.actor.send({ type: 'STOP', signal: 'SIGTERM' });
  m.clock.increment(50);
  assert.equal(m.state(), { draining: 'closing' });
  m.clock.increment(200);
  assert.is(m.state(), 'stopped');
  assert.is(context(m).stopReason, 'drain_timeout');
});

test('a reload outside healthy is ignored', () => {
  const m = runMachine();
  m.actor.send({ type: 'RELOAD', timeouts: { startupTimeoutMs: 1, gracePeriodMs: 1, drainTimeoutMs: 1 } });
  assert.is(m.state(), 'starting');
  assert.is(context(m).startupTimeoutMs, 10_000);
  assert.equal(m.path(), []);
});

test('stopped ignores everything', () => {
  const m = runMachine();
  m.actor.send({ type: 'STOP', signal: 'SIGTERM' });
  m.actor.send({ type: 'LISTENERS_BOUND' });
  m.actor.send({ type: 'STOP', signal: 'SIGTERM' });
  assert.is(m.state(), 'stopped');
  assert.is(m.history.length, 1);
});

test('the effects of a whole run, in the order lifecycle.ts lists them', () => {
  const m = runMachine({ gracePeriodMs: 1_000 });
  m.actor.send({ type: 'LISTENERS_BOUND' });
  assert.equal(m.takeEffects(), []);
  m.actor.send({ type: 'BACKENDS_CHANGED', healthy: 1, total: 1 });
  // The PID file is ours and the proxy info says so before the listeners accept and the parent hears of it.
  assert.equal(m.takeEffects(), ['handOverPidFile', 'writeProxyInfo', 'announceHealthy', 'reportReady']);
  m.actor.send({ type: 'BACKENDS_CHANGED', healthy: 0, total: 1 });
  assert.equal(m.takeEffects(), []);
  // A reload does not enter healthy again: the parent is not told twice, the listeners keep their phase.
  m.actor.send({
    type: 'RELOAD',
    timeouts: { startupTimeoutMs: 10_000, gracePeriodMs: 1_000, drainTimeoutMs: 30_000 },
  });
  assert.equal(m.takeEffects(), ['writeProxyInfo']);
  m.actor.send({ type: 'STOP', signal: 'SIGTERM' });
  assert.equal(m.takeEffects(), ['announceDraining']);
  m.clock.increment(1_000);
  assert.equal(m.listenerCommands, ['CLOSE_LISTENING']);
  assert.equal(m.takeEffects(), []);
  // onStop runs once the listeners stopped accepting, not when the closing began.
  m.actor.send({ type: 'LISTENERS_CLOSED' });
  assert.equal(m.takeEffects(), ['runOnStop']);
  assert.equal(m.state(), { draining: 'closing' });
  m.actor.send({ type: 'CONNECTIONS_DRAINED' });
  assert.equal(m.takeEffects(), ['announceStopped']);
  assert.is(m.state(), 'stopped');
});

test('a run that never became healthy announces only that it stopped', () => {
  const m = runMachine();
  m.actor.send({ type: 'LISTENERS_BOUND' });
  m.actor.send({ type: 'STOP', signal: 'SIGTERM' });
  assert.equal(m.takeEffects(), ['announceStopped']);
  assert.equal(m.listenerCommands, []);
});

test('reading lifecycle.ts lists everything the lifecycle does, in order', () => {
  const listed: string[] = [];
  for (const { node, entry, transitions } of allStates(lifecycleMachine)) {
    const state = node.path.join('.');
    if (entry.length > 0) listed.push(`${state} entry: ${entry.join(', ')}`);
    for (const t of transitions) {
      const actions = actionNames(t.actions);
      const event = eventOf(t);
      if (actions.length > 0)
        listed.push(`${state} ${event === undefined ? '(always)' : eventName(event)}: ${actions.join(', ')}`);
    }
  }
  assert.equal(listed, [
    'starting LISTENERS_BOUND: recordListenersBound',
    'starting BACKENDS_CHANGED: recordBackends',
    'starting LISTEN_FAILED: stopBecause, recordListenFailure',
    'starting WORKER_FAILED: stopBecause, recordWorkerFailure',
    'starting STOP: stopBecause',
    'starting startupTimeout: stopBecause, recordStartupTimeout',
    'healthy entry: handOverPidFile, writeProxyInfo, announceHealthy, reportReady',
    'healthy BACKENDS_CHANGED: recordBackends',
    'healthy RELOAD: applyTimeouts, writeProxyInfo',
    'healthy WORKER_FAILED: recordWorkerFailure',
    'draining entry: announceDraining',
    'draining STOP: stopBecause',
    'draining WORKER_FAILED: recordWorkerFailure',
    'draining.closing entry: closeListening',
    'draining.closing LISTENERS_CLOSED: runOnStop',
    'draining.closing CONNECTIONS_DRAINED: stopBecause',
    'draining.closing drainTimeout: stopBecause',
    'stopped entry: announceStopped',
  ]);
  // Every effect the supervisor provides is one the machine names, and none is left unused.
  const used = new Set(listed.flatMap((line) => line.split(': ')[1]!.split(', ')));
  for (const name of effectNames) assert.ok(used.has(name), `${name} is never run`);
});

test("the exported list of lifecycle states is the machine's top-level states, in order", () => {
  assert.equal(
    stateTree(lifecycleMachine).children.map((state) => state.node.key),
    [...lifecycleStates],
  );
});

test('every transition of the machine was exercised above', () => {
  const missing = allTransitionKeys(lifecycleMachine).filter((key) => !exercisedTransitions.has(key));
  assert.equal(missing, [], `transitions never exercised:\n${missing.join('\n')}`);
  assert.ok(exercisedTransitions.size >= 14);
});

test.run();
