/** The embedding API, in this process: what an application using sluice as a library sees. */
import { createServer } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AlreadyServingError,
  ConfigError,
  HttpProxy,
  ListenError,
  StartupTimeout,
  UnknownBackendError,
  type LifecycleState,
} from '../../src/index.ts';
import { get, until } from '../support/http.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { HEALTH_PATH } from '../support/upstream.ts';

const upstreams: TestUpstream[] = [];
const proxies: HttpProxy[] = [];

test.after(async () => {
  await Promise.all(proxies.map((p) => p.shutdown({ timeoutMs: 1_000 })));
  await Promise.all(upstreams.map((u) => u.close()));
});

function proxyWith(options: Parameters<typeof HttpProxy.init>[0] = {}): HttpProxy {
  const proxy = HttpProxy.init({
    listen_host: '127.0.0.1',
    listen_port: 0,
    workers: 1,
    health_check: { path: HEALTH_PATH, interval_ms: 100, timeout_ms: 500, unhealthy_threshold: 1 },
    log: { level: 'silent' },
    ...options,
  });
  proxies.push(proxy);
  return proxy;
}

async function upstream(name: string): Promise<TestUpstream> {
  const u = await startUpstream(name);
  upstreams.push(u);
  return u;
}

test('init refuses bad options with a ConfigError naming the key and value', () => {
  try {
    HttpProxy.init({ listen_port: 70000 });
    assert.unreachable('init accepted port 70000');
  } catch (error) {
    assert.instance(error, ConfigError);
    assert.is((error as ConfigError).code, 'SLUICE_CONFIG_INVALID');
    assert.match((error as Error).message, '$.proxy.listen_port');
    assert.match((error as Error).message, '70000');
  }
  assert.throws(() => HttpProxy.init({ listen_prot: 1 } as never), /listen_prot: unknown key/);
});

test('serve, inspect, add and remove backends while serving, shut down', async () => {
  const a = await upstream('a');
  const b = await upstream('b');
  const proxy = proxyWith();
  await proxy.addBackend('127.0.0.1', a.port, 1);
  const states: LifecycleState[] = [];
  const serving = proxy.serve();
  proxy.lifecycle.subscribe((snapshot) => {
    const state = typeof snapshot.value === 'string' ? snapshot.value : Object.keys(snapshot.value)[0]!;
    if (states.at(-1) !== state) states.push(state as LifecycleState);
  });
  await proxy.waitForHealthy(5_000);
  assert.ok(proxy.isHealthy(), 'isHealthy');
  assert.ok(proxy.hasHealthyBackends(), 'hasHealthyBackends');
  assert.ok(proxy.pool.isHealthy(), 'pool.isHealthy');
  assert.ok(proxy.cache.isHealthy(), 'cache.isHealthy');
  assert.is(proxy.config.max_connections, 10000);
  const port = proxy.port!;
  assert.is((await get(port, '/')).body, 'a\n');

  // One request held at a: one active connection.
  const held = get(port, a.holdPath);
  await a.nextHeld();
  assert.is(proxy.getActiveConnections(), 1);

  await proxy.addBackend('127.0.0.1', b.port, 1);
  await until(
    () => get(port, '/who'),
    (answer) => answer.body === 'b\n',
  );

  // a is removed with a request on it: that request still completes.
  await proxy.removeBackend('127.0.0.1', a.port);
  for (let i = 0; i < 5; i++) assert.is((await get(port, `/after-remove-${i}`)).body, 'b\n');
  a.release();
  assert.is((await held).body, 'a\n');
  try {
    await proxy.removeBackend('127.0.0.1', a.port);
    assert.unreachable('removed twice');
  } catch (error) {
    assert.instance(error, UnknownBackendError);
  }
  try {
    await proxy.serve();
    assert.unreachable('served twice');
  } catch (error) {
    assert.instance(error, AlreadyServingError);
  }

  await proxy.shutdown();
  await serving;
  assert.equal(states, ['starting', 'healthy', 'draining', 'stopped']);
  assert.equal(
    proxy.history.map((r) => `${r.from}->${r.to}`),
    ['starting->healthy', 'healthy->draining', 'draining->stopped'],
  );
  assert.is(proxy.state, 'stopped');
});

test('no healthy backend: serve() and waitForHealthy() reject with StartupTimeout', async () => {
  const proxy = proxyWith({ startup_timeout_ms: 300, backends: [{ address: '127.0.0.1', port: 1 }] });
  const outcomes = await Promise.allSettled([proxy.serve(), proxy.waitForHealthy(10_000)]);
  for (const outcome of outcomes) {
    assert.is(outcome.status, 'rejected');
    const error = (outcome as PromiseRejectedResult).reason as StartupTimeout;
    assert.instance(error, StartupTimeout);
    assert.is(error.code, 'SLUICE_STARTUP_TIMEOUT');
  }
});

test('waitForHealthy gives up after its own timeout', async () => {
  const proxy = proxyWith({ backends: [{ address: '127.0.0.1', port: 1 }] });
  const serving = proxy.serve().catch(() => {
    /* serve() rejects once the proxy gives up; the test only waits for it to end */
  });
  const started = Date.now();
  try {
    await proxy.waitForHealthy(200);
    assert.unreachable('healthy without a backend');
  } catch (error) {
    assert.instance(error, StartupTimeout);
    assert.ok(Date.now() - started < 5_000);
  }
  await proxy.shutdown();
  await serving;
});

test('the port in use: serve() rejects with ListenError(EADDRINUSE)', async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const a = await upstream('a');
  const proxy = proxyWith({
    listen_port: (blocker.address() as { port: number }).port,
    backends: [{ address: '127.0.0.1', port: a.port }],
  });
  try {
    await proxy.serve();
    assert.unreachable('served on a taken port');
  } catch (error) {
    assert.instance(error, ListenError);
    assert.is((error as ListenError).reason, 'EADDRINUSE');
  } finally {
    blocker.close();
  }
});

test('lifecycle hooks that throw are logged and never block start or shutdown', async () => {
  const a = await upstream('a');
  const calls: string[] = [];
  const proxy = proxyWith({
    backends: [{ address: '127.0.0.1', port: a.port }],
    hooks: {
      onStart(p) {
        calls.push(`onStart ${p.state}`);
        throw new Error('onStart exploded');
      },
      onStop() {
        calls.push('onStop');
        return Promise.reject(new Error('onStop exploded'));
      },
    },
  });
  const serving = proxy.serve();
  await proxy.waitForHealthy(5_000);
  await proxy.shutdown();
  await serving;
  assert.equal(calls, ['onStart starting', 'onStop']);
  assert.is(proxy.state, 'stopped');
});

test('await using: leaving the scope shuts the proxy down', async () => {
  const a = await upstream('a');
  let escaped: HttpProxy | undefined;
  {
    await using proxy = proxyWith({ backends: [{ address: '127.0.0.1', port: a.port }] });
    escaped = proxy;
    void proxy.serve();
    await proxy.waitForHealthy(5_000);
  }
  assert.is(escaped.state, 'stopped');
});

test.run();
