/** Per-request hooks run in every listener thread; a throwing hook costs only its own request. */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { get, until } from '../support/http.ts';
import { killAll, type SluiceProcess, startRouting, stopSluice } from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { tempDir, testConfig } from '../support/config-file.ts';

const hooksModule = fileURLToPath(new URL('../fixtures/recording-hooks.ts', import.meta.url));
const hooks = suite<{ a?: TestUpstream; b?: TestUpstream; sluice?: SluiceProcess; port?: number; logFile?: string }>(
  'request hooks',
);

const calls = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

hooks.before(async (ctx) => {
  ctx.a = await startUpstream('a');
  ctx.b = await startUpstream('b');
  ctx.logFile = join(tempDir(), 'hooks.jsonl');
  // A relative request_hooks path resolves against the config file's folder: give it relative.
  const configFile = join(tempDir(), 'config.json');
  const config = testConfig([{ port: ctx.a.port }, { port: ctx.b.port }], {
    workers: 2,
    request_hooks: relative(dirname(configFile), hooksModule),
  });
  writeFileSync(configFile, JSON.stringify(config));
  ({ sluice: ctx.sluice, port: ctx.port } = await startRouting(['-c', configFile], 2, 2, {
    env: { SLUICE_TEST_HOOK_LOG: ctx.logFile },
  }));
});

hooks.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  await ctx.a?.close();
  await ctx.b?.close();
  killAll();
});

hooks(
  'headers edited both ways; onRequestStart and onRequestEnd see the same ctx, with status, bytes and backend',
  async (ctx) => {
    const answer = await get(ctx.port!, '/edit', { headers: { 'x-remove-me': 'secret' } });
    assert.is(answer.status, 200);
    assert.ok(answer.headers['x-hook-thread'], 'responseFilter added a header');
    const seen = [...ctx.a!.received, ...ctx.b!.received].find((r) => r.url === '/edit')!;
    assert.is(seen.headers['x-added-by-hook'], 'yes');
    assert.is(seen.headers['x-remove-me'], undefined);
    const end = await until(
      () => calls(ctx.logFile!).find((c) => c['hook'] === 'onRequestEnd' && c['path'] === '/edit'),
      Boolean,
    );
    assert.is(end!['status'], 200);
    assert.ok((end!['bytes'] as number) > answer.body.length, 'bytes count the head and the body');
    assert.match(String(end!['backend']), /^127\.0\.0\.1:\d+$/);
    assert.equal(end!['ctx'], { startedIn: end!['thread'] });
    assert.is(typeof end!['duration'], 'number');
  },
);

hooks('requestFilter answers without an upstream', async (ctx) => {
  const before = ctx.a!.received.length + ctx.b!.received.length;
  const answer = await get(ctx.port!, '/blocked');
  assert.is(answer.status, 403);
  assert.is(answer.body, 'blocked\n');
  assert.is(answer.headers['x-blocked-by'], 'hook');
  assert.is(ctx.a!.received.length + ctx.b!.received.length, before);
});

hooks('upstreamPeer chooses the backend', async (ctx) => {
  for (let i = 0; i < 6; i++)
    assert.is((await get(ctx.port!, '/pick', { headers: { 'x-pick-port': String(ctx.b!.port) } })).body, 'b\n');
  for (let i = 0; i < 6; i++)
    assert.is((await get(ctx.port!, '/pick', { headers: { 'x-pick-port': String(ctx.a!.port) } })).body, 'a\n');
});

hooks('a throwing hook answers that request 500, is logged, and nothing else is affected', async (ctx) => {
  const before = ctx.a!.received.length + ctx.b!.received.length;
  assert.is((await get(ctx.port!, '/throw')).status, 500);
  assert.is(ctx.a!.received.length + ctx.b!.received.length, before, 'never forwarded');
  assert.is((await get(ctx.port!, '/throw-in-response')).status, 500);
  const logged = await ctx.sluice!.waitForLog(
    (l) => l['code'] === 'SLUICE_HOOK_FAILED' && l['hook'] === 'requestFilter',
  );
  assert.is(logged['path'], '/throw');
  await ctx.sluice!.waitForLog((l) => l['code'] === 'SLUICE_HOOK_FAILED' && l['hook'] === 'responseFilter');
  assert.is((await get(ctx.port!, '/fine')).status, 200);
  assert.not.ok(
    ctx.sluice!.lines.some((l) => l['event'] === 'actor.failed' && l['actor'] === 'listener'),
    'no thread died',
  );
});

hooks('the hooks run in both listener threads', async (ctx) => {
  const threads = new Set<string>();
  // New connections are spread over the threads by the kernel; ask until both answered.
  await until(
    async () => {
      threads.add(String((await get(ctx.port!, '/which')).headers['x-hook-thread']));
      return threads.size;
    },
    (size) => size >= 2,
    200,
    0,
  );
  assert.is(threads.size, 2);
  const threadsInLog = new Set(
    calls(ctx.logFile!)
      .filter((c) => c['hook'] === 'onRequestStart')
      .map((c) => c['thread']),
  );
  assert.is(threadsInLog.size, 2);
});

hooks.run();
