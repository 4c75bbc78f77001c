/** The admin listener: status, metrics, events, the token, and never on the proxy port. */
import { request as httpRequest } from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { get, until } from '../support/http.ts';
import type { StatusDocument, UnauthorizedDocument } from '../support/documents.ts';
import { exitWithin, killAll, type SluiceProcess, startRouting, stopSluice } from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { testConfig, writeConfig } from '../support/config-file.ts';

const TOKEN = 's3cret-token';
const admin = suite<{ a?: TestUpstream; sluice?: SluiceProcess; port?: number; adminPort?: number; config?: string }>(
  'admin',
);

const auth = { authorization: `Bearer ${TOKEN}` };

admin.before(async (ctx) => {
  ctx.a = await startUpstream('a');
  ctx.config = writeConfig({
    ...testConfig([{ port: ctx.a.port, weight: 2 }], { workers: 2 }),
    admin: { listen_port: 0, token: TOKEN },
  });
  ({ sluice: ctx.sluice, port: ctx.port } = await startRouting(['-c', ctx.config], 2, 1));
  ctx.adminPort = (await ctx.sluice.waitForLog((l) => l['event'] === 'admin.listening'))['port'] as number;
});

admin.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  await ctx.a?.close();
  killAll();
});

admin('without the token: 401 on every path; with it: 200', async (ctx) => {
  for (const path of ['/status', '/metrics', '/', '/events']) {
    const denied = await get(ctx.adminPort!, path);
    assert.is(denied.status, 401, path);
    assert.is(denied.headers['www-authenticate'], 'Bearer');
  }
  assert.is((await get(ctx.adminPort!, '/status', { headers: { authorization: 'Bearer wrong' } })).status, 401);
  // Each says how to pass the token: a page for the dashboard's browser, a hint in the JSON otherwise.
  const page = await get(ctx.adminPort!, '/');
  assert.match(String(page.headers['content-type']), 'text/html');
  assert.match(page.body, `http://127.0.0.1:${ctx.adminPort}/?token=&lt;admin.token&gt;`);
  const { hint } = JSON.parse((await get(ctx.adminPort!, '/metrics')).body) as UnauthorizedDocument;
  assert.match(hint, 'Authorization: Bearer <admin.token>, or add ?token=');
  assert.is((await get(ctx.adminPort!, '/status', { headers: auth })).status, 200);
});

admin('/status has the lifecycle, history, backends, connections and workers', async (ctx) => {
  const status = JSON.parse((await get(ctx.adminPort!, '/status', { headers: auth })).body) as StatusDocument;
  assert.is(status.state, 'healthy');
  assert.is(status.pid, ctx.sluice!.pid);
  assert.ok(Date.parse(status.started_at) <= Date.now());
  assert.ok(status.uptime_ms >= 0);
  assert.equal(
    status.history.map((h) => [h.from, h.to]),
    [['starting', 'healthy']],
  );
  assert.equal(status.backends, [
    {
      upstream: 'default',
      address: '127.0.0.1',
      port: ctx.a!.port,
      weight: 2,
      healthy: true,
      enabled: true,
      ejected: false,
      in_flight: 0,
    },
  ]);
  assert.equal(status.connections.active, 0);
  assert.equal(status.workers.map((w) => `${w.kind}:${w.id}:${w.restarts}`).sort(), [
    'health-checker:0:0',
    'listener:0:0',
    'listener:1:0',
    'pool:0:0',
  ]);
});

admin('/metrics sums what every listener thread counted', async (ctx) => {
  for (let i = 0; i < 10; i++) assert.is((await get(ctx.port!, `/m${i}`)).status, 200);
  // The last client connection closes a moment after its response ended.
  const metrics = (
    await until(
      () => get(ctx.adminPort!, '/metrics', { headers: auth }),
      (answer) => answer.body.includes('\nsluice_active_connections 0'),
    )
  ).body;
  const value = (line: string) =>
    Number(
      metrics
        .split('\n')
        .find((l) => l.startsWith(line))
        ?.split(' ')
        .pop(),
    );
  assert.is(value(`sluice_requests_total{code="200",upstream="default",backend="127.0.0.1:${ctx.a!.port}"}`), 10);
  assert.is(value('sluice_request_duration_seconds_count'), 10);
  // Per backend, the time its requests took (with the count above, its mean latency: the dashboard shows it).
  const backend = `upstream="default",backend="127.0.0.1:${ctx.a!.port}"`;
  const backendSeconds = value(`sluice_backend_request_seconds_total{${backend}}`);
  const allSeconds = value('sluice_request_duration_seconds_sum');
  assert.ok(backendSeconds > 0 && backendSeconds <= allSeconds + 1e-9, `${backendSeconds} of ${allSeconds}`);
  assert.is(value('sluice_lifecycle_state{state="healthy"}'), 1);
  assert.is(value('sluice_lifecycle_state{state="starting"}'), 0);
  assert.is(value(`sluice_backend_healthy{upstream="default",backend="127.0.0.1:${ctx.a!.port}"}`), 1);
  assert.ok(value(`sluice_health_checks_total{backend="127.0.0.1:${ctx.a!.port}",result="pass"}`) >= 1);
  assert.is(value('sluice_actor_restarts_total{kind="listener"}'), 0);
  assert.is(value('sluice_active_connections'), 0);
  assert.match(metrics, '# TYPE sluice_request_duration_seconds histogram');
  assert.match(metrics, '# TYPE sluice_drain_duration_seconds gauge');
});

admin("/metrics has the process metrics and each listener thread's event-loop delay", async (ctx) => {
  const metrics = (await get(ctx.adminPort!, '/metrics', { headers: auth })).body;
  const value = (line: string) =>
    Number(
      metrics
        .split('\n')
        .find((l) => l.startsWith(line))
        ?.split(' ')
        .pop(),
    );
  // The whole process's RSS, a few tens of MB at least, and its start time (which an aggregator would drop).
  assert.ok(value('process_resident_memory_bytes') > 10 * 1024 * 1024, 'process_resident_memory_bytes');
  assert.ok(Math.abs(value('process_start_time_seconds') - Date.now() / 1000) < 600, 'process_start_time_seconds');
  assert.match(metrics, '# TYPE nodejs_eventloop_lag_p99_seconds gauge');
  for (const stat of ['p50', 'p99', 'max']) {
    assert.match(metrics, `# TYPE sluice_listener_event_loop_delay_${stat}_seconds gauge`);
    for (const thread of ['0', '1']) {
      const delay = value(`sluice_listener_event_loop_delay_${stat}_seconds{thread="${thread}"}`);
      assert.ok(delay >= 0 && delay < 10, `${stat} of listener ${thread}: ${delay}`);
    }
  }
  assert.not.match(metrics, 'thread="2"', 'one series per listener thread');
});

admin('the admin API is never served on the proxy port', async (ctx) => {
  const before = ctx.a!.received.length;
  const answer = await get(ctx.port!, '/status', { headers: auth });
  assert.is(answer.body, 'a\n', 'forwarded to the backend like any path');
  assert.is(ctx.a!.received.length, before + 1);
});

admin(
  '/events streams the current state, then transitions as they happen (SIGTERM → draining → stopped)',
  async (ctx) => {
    const events: { event: string; data: Record<string, unknown> }[] = [];
    const closed = new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: ctx.adminPort, path: `/events?token=${TOKEN}` }, (res) => {
        assert.is(res.headers['content-type'], 'text/event-stream');
        let buffer = '';
        res.setEncoding('utf8').on('data', (chunk: string) => {
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = /^event: (.+)$/m.exec(block)?.[1];
            const data = /^data: (.+)$/m.exec(block)?.[1];
            if (event && data) events.push({ event, data: JSON.parse(data) as Record<string, unknown> });
            if (event === 'state') ctx.sluice!.kill('SIGTERM');
          }
        });
        res.on('end', resolve);
        res.on('close', resolve);
      });
      req.on('error', reject);
      req.end();
    });
    await closed;
    assert.is(events[0]!.event, 'state');
    assert.is(events[0]!.data['state'], 'healthy');
    const transitions = events
      .filter((e) => e.event === 'transition')
      .map((e) => `${String(e.data['from'])}->${String(e.data['to'])}`);
    assert.equal(transitions, ['healthy->draining', 'draining->stopped']);
    assert.is((await exitWithin(ctx.sluice!)).code, 0);
  },
);

admin.run();
