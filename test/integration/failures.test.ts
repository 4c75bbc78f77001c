/**
 * Upstream failures seen by the data path: timeouts, refusals, retries, in
 * every way a request can enter (plain, with request hooks, through a route);
 * plus TCP health checks and log.file, which no request takes part in.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { get, until, type Answer } from '../support/http.ts';
import { exitWithin, killAll, routingTo, startSluice, transitionTo } from '../support/sluice-process.ts';
import { HEALTH_PATH, startUpstream, type TestUpstream } from '../support/upstream.ts';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';
import { entered, enter, entries } from '../support/entries.ts';

const upstreams: TestUpstream[] = [];
const upstream = async (name: string) => {
  const u = await startUpstream(name);
  upstreams.push(u);
  return u;
};

const cleanUp = async () => {
  killAll();
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
};

/** RFC 9110 §6.6.1: an origin with a clock sends Date, its own answers too (the fast path writes them itself). */
function assertDated(answer: Answer): void {
  const date = answer.headers['date'];
  assert.type(date, 'string', `a Date header on the ${answer.status}`);
  assert.match(String(date), /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  assert.ok(Math.abs(Date.parse(String(date)) - Date.now()) < 5_000, `a current Date: ${String(date)}`);
}

// Debug lines: `entered` reads the one that says request hooks loaded.
const DEBUG = ['--log-level', 'debug'];

for (const entry of entries) {
  const s = suite(`failures (${entry})`);
  s.after(cleanUp);

  s(`${entry}: no response headers within upstream_timeout_ms: 504`, async () => {
    const slow = await upstream('slow');
    const sluice = startSluice([
      '-c',
      writeConfig(enter(testConfig([{ port: slow.port }], { upstream_timeout_ms: 300, workers: 1 }), entry)),
      ...DEBUG,
    ]);
    const port = await sluice.port();
    await sluice.waitForLog(transitionTo('healthy'));
    await entered(sluice, entry);
    const answer = await get(port, slow.holdPath);
    assert.is(answer.status, 504);
    assertDated(answer);
    slow.release();
    sluice.kill('SIGTERM');
    assert.is((await exitWithin(sluice)).code, 0);
  });

  s(
    `${entry}: no healthy backend: 502 at once; a reload that empties the backend set: 503 with Retry-After`,
    async () => {
      const a = await upstream('a');
      const configFile = join(tempDir(), 'sluice.json');
      const config = testConfig([{ port: a.port }], { workers: 1 });
      writeFileSync(configFile, JSON.stringify(enter(config, entry)));
      const sluice = startSluice(['-c', configFile, ...DEBUG]);
      const port = await sluice.port();
      await sluice.waitForLog(transitionTo('healthy'));
      await entered(sluice, entry);
      a.healthStatus = 503;
      const unhealthy = await until(
        () => get(port, '/no-healthy'),
        (answer) => answer.status === 502,
      );
      assert.is(unhealthy.body, 'Bad Gateway\n');
      assertDated(unhealthy);

      // The same entry without backends: through a route, its upstream is the one emptied.
      writeFileSync(configFile, JSON.stringify(enter({ ...config, backends: [] }, entry)));
      sluice.kill('SIGHUP');
      const empty = await until(
        () => get(port, '/no-backend'),
        (answer) => answer.status === 503,
      );
      assert.is(empty.headers['retry-after'], '1');
      assert.match(empty.body, 'no backend configured');
      assertDated(empty);
      sluice.kill('SIGTERM');
      assert.is((await exitWithin(sluice)).code, 0);
    },
  );

  s(
    `${entry}: a backend that went away between health checks: requests are retried on the other one, none fails`,
    async () => {
      const a = await upstream('a');
      const b = await upstream('b');
      // A long interval: the pool still believes b is healthy after it dies.
      const config = testConfig([{ port: a.port }, { port: b.port }], { workers: 1 }, { interval_ms: 60_000 });
      const sluice = startSluice(['-c', writeConfig(enter(config, entry)), ...DEBUG]);
      const port = await sluice.port();
      await sluice.waitForLog(transitionTo('healthy'));
      await entered(sluice, entry);
      // The listener routes to both (a health flip reaches the listeners a moment after it is logged).
      await routingTo(sluice, 1, 2);
      await b.close();
      const bodies = [];
      for (let i = 0; i < 10; i++) {
        const answer = await get(port, `/r${i}`);
        assert.is(answer.status, 200);
        bodies.push(answer.body);
      }
      assert.ok(bodies.every((body) => body === 'a\n'));
      assert.ok(sluice.lines.some((l) => l['event'] === 'upstream.failed' && l['code'] === 'ECONNREFUSED'));
      sluice.kill('SIGTERM');
      await exitWithin(sluice);
    },
  );

  s(`${entry}: a reused upstream connection the backend had closed never costs a client request`, async () => {
    const { createServer } = await import('node:http');
    // Closes a keep-alive connection when a second request arrives on it: the backend's idle
    // timeout firing just as the proxy reuses the connection.
    const requestsOn = new WeakMap<object, number>();
    const closing = createServer((req, res) => {
      if (req.url === '/healthz') return void res.end();
      const n = (requestsOn.get(req.socket) ?? 0) + 1;
      requestsOn.set(req.socket, n);
      if (n >= 2) return void req.socket.destroy();
      res.end('fresh\n');
    });
    await new Promise<void>((resolve) => closing.listen(0, '127.0.0.1', resolve));
    const closingPort = (closing.address() as { port: number }).port;
    const sluice = startSluice([
      '-c',
      writeConfig(enter(testConfig([{ port: closingPort }], { workers: 1 }, { interval_ms: 60_000 }), entry)),
      ...DEBUG,
    ]);
    try {
      const port = await sluice.port();
      await sluice.waitForLog(transitionTo('healthy'));
      await entered(sluice, entry);
      for (let i = 0; i < 8; i++) assert.is((await get(port, `/again-${i}`)).body, 'fresh\n', `request ${i}`);
    } finally {
      sluice.kill('SIGTERM');
      await exitWithin(sluice);
      closing.closeAllConnections();
      closing.close();
    }
  });

  s(
    `${entry}: a POST whose backend refuses the connection goes to the next one with its whole body: no byte had left`,
    async () => {
      const received: string[] = [];
      const { createServer } = await import('node:http');
      const live = createServer((req, res) => {
        let body = '';
        req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        req.on('end', () => {
          if (req.url !== HEALTH_PATH) received.push(body);
          res.end('live\n');
        });
      });
      await new Promise<void>((resolve) => live.listen(0, '127.0.0.1', resolve));
      const dead = await upstream('dead');
      const livePort = (live.address() as { port: number }).port;
      const config = testConfig([{ port: dead.port }, { port: livePort }], { workers: 1 }, { interval_ms: 60_000 });
      const sluice = startSluice(['-c', writeConfig(enter(config, entry)), ...DEBUG]);
      try {
        const port = await sluice.port();
        await sluice.waitForLog(transitionTo('healthy'));
        await entered(sluice, entry);
        await routingTo(sluice, 1, 2);
        await dead.close();
        const body = 'payload-'.repeat(1000);
        for (let i = 0; i < 4; i++) {
          const answer = await get(port, `/submit-${i}`, {
            method: 'POST',
            headers: { 'content-length': String(body.length) },
            body,
          });
          assert.is(answer.status, 200);
        }
        assert.equal(received, [body, body, body, body], 'every body arrived whole at the live backend');
        assert.ok(
          sluice.lines.some((l) => l['event'] === 'upstream.failed' && l['code'] === 'ECONNREFUSED'),
          'one went to the dead backend first',
        );
      } finally {
        sluice.kill('SIGTERM');
        await exitWithin(sluice);
        live.close();
      }
    },
  );

  s(`${entry}: POST is not retried: a refused backend gives 502 when no other backend is left`, async () => {
    const a = await upstream('a');
    const config = testConfig([{ port: a.port }], { workers: 1 }, { interval_ms: 60_000 });
    const sluice = startSluice(['-c', writeConfig(enter(config, entry)), ...DEBUG]);
    const port = await sluice.port();
    await sluice.waitForLog(transitionTo('healthy'));
    await entered(sluice, entry);
    await a.close();
    const answer = await get(port, '/submit', { method: 'POST', headers: { 'content-length': '0' } });
    assert.is(answer.status, 502);
    sluice.kill('SIGTERM');
    await exitWithin(sluice);
  });

  s(
    `${entry}: a backend dying mid-body: the client connection is closed, the truncated body never looks complete`,
    async () => {
      const { createServer } = await import('node:http');
      const dying = createServer((req, res) => {
        if (req.url === '/healthz') return void res.end();
        res.writeHead(200, { 'content-length': '100000' });
        res.write('x'.repeat(1000), () => res.socket?.destroy());
      });
      await new Promise<void>((resolve) => dying.listen(0, '127.0.0.1', resolve));
      const dyingPort = (dying.address() as { port: number }).port;
      const sluice = startSluice([
        '-c',
        writeConfig(enter(testConfig([{ port: dyingPort }], { workers: 1 }), entry)),
        ...DEBUG,
      ]);
      const port = await sluice.port();
      await sluice.waitForLog(transitionTo('healthy'));
      await entered(sluice, entry);
      const outcome = await get(port, '/big').then(
        (answer) => `complete with ${answer.body.length} bytes`,
        (error: unknown) => (error as NodeJS.ErrnoException).code ?? (error as Error).message,
      );
      assert.ok(['ECONNRESET', 'aborted'].includes(outcome), `the client saw: ${outcome}`);
      sluice.kill('SIGTERM');
      await exitWithin(sluice);
      dying.closeAllConnections();
      dying.close();
    },
  );

  s.run();
}

// No request takes part in these: they hold for one configuration, the suite's own (plain).
const single = suite('health checks and log files');
single.after(cleanUp);

single('tcp health checks: a listening backend becomes healthy', async () => {
  const a = await upstream('a');
  const sluice = startSluice(['-c', writeConfig(testConfig([{ port: a.port }], { workers: 1 }, { type: 'tcp' }))]);
  const flip = await sluice.waitForLog((l) => l['actor'] === 'health-checker' && l['to'] === 'healthy');
  assert.is(flip['reason'], 'connected');
  await sluice.waitForLog(transitionTo('healthy'));
  assert.is(a.probes, 0, 'a tcp check sends no HTTP request');
  sluice.kill('SIGTERM');
  await exitWithin(sluice);
});

single('log.file: every thread writes its lines to the file, none lost at exit', async () => {
  const a = await upstream('a');
  const logFile = join(tempDir(), 'sluice.log');
  const config = { ...testConfig([{ port: a.port }], { workers: 2 }), log: { file: logFile } };
  const sluice = startSluice(['-c', writeConfig(config), '--log-level', 'debug']);
  const lines = () => {
    try {
      return readFileSync(logFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    } catch {
      return [];
    }
  };
  // The file is where every thread's lines are: wait there for `healthy`.
  await until(
    () => lines(),
    (written) => written.some((l) => l['to'] === 'healthy' && l['actor'] === 'supervisor'),
  );
  sluice.kill('SIGTERM');
  await exitWithin(sluice);
  // The terminal keeps the main thread's lines (the lifecycle); the worker threads write to the file only.
  assert.ok(
    sluice.lines.some((l) => l.msg === 'Shutdown complete'),
    'stdout shows the lifecycle',
  );
  assert.not.ok(
    sluice.lines.some((l) => l['actor'] === 'listener' || l['actor'] === 'health-checker'),
    'no thread lines on stdout',
  );
  const written = lines();
  assert.is(written[0]!['msg'], 'Starting proxy on port 0...');
  assert.ok(
    written.some((l) => l['actor'] === 'health-checker'),
    'worker-thread lines are there',
  );
  assert.ok(
    written.some((l) => l['actor'] === 'listener'),
    'listener-thread lines are there',
  );
  assert.is(written.at(-1)!['msg'], 'Shutdown complete');
});

single.run();
