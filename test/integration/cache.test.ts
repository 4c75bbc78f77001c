/**
 * The shared cache, black-box through a real sluice with two listener
 * threads: what is stored and for how long (RFC 9111 as a shared cache),
 * Cache-Status (RFC 9211) and Age, Vary, revalidation, stale-while-
 * revalidate and stale-if-error (RFC 5861), invalidation by unsafe
 * methods. Each test uses its own paths, and counts what reached the origin.
 */
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { get, until, type Answer } from '../support/http.ts';
import { answer, startOrigin, type Origin } from '../support/origin.ts';
import { killAll, startRouting, stopSluice, type SluiceProcess } from '../support/sluice-process.ts';
import { tempDir, testConfig, writeConfig } from '../support/config-file.ts';

const test = suite('cache');

let origin: Origin | undefined;
let sluice: SluiceProcess | undefined;
let port = 0;

test.before(async () => {
  const started = (origin = await startOrigin());
  const config = {
    ...testConfig([{ port: started.port }], { startup_timeout_ms: 20_000 }),
    cache: { path: join(tempDir(), 'cache'), max_size_mb: 64, max_object_mb: 1 },
    routes: [
      { match: { path_prefix: '/plain' }, upstream: 'default' },
      { match: { path_prefix: '/' }, upstream: 'default', cache: true },
    ],
  };
  ({ sluice, port } = await startRouting(['-c', writeConfig(config)], 2, 1));
  await until(
    () => get(port, '/ready'),
    (a) => a.status === 200,
  );
});

test.after(async () => {
  await stopSluice(sluice);
  killAll();
  await origin?.close();
});

const status = (a: Answer) => a.headers['cache-status'];

/** Two requests: the first from the origin, the second as the cache has it. */
async function twice(path: string, headers: Record<string, string> = {}): Promise<[Answer, Answer]> {
  const first = await get(port, path, { headers });
  const second = await get(port, path, { headers });
  return [first, second];
}

test('a fresh response is stored on a miss and served on the next request, with Age', async () => {
  origin!.on('/fresh', answer('fresh body', { 'cache-control': 'max-age=60' }));
  const [first, second] = await twice('/fresh');
  assert.is(status(first), 'sluice; fwd=miss; stored');
  assert.is(status(second), 'sluice; hit');
  assert.is(second.body, 'fresh body');
  assert.is(second.headers['content-length'], '10');
  assert.ok(Number(second.headers.age) >= 0);
  assert.is(origin!.count('/fresh'), 1);
});

test('a route without cache: true is not cached and has no Cache-Status', async () => {
  origin!.on('/plain/x', answer('plain', { 'cache-control': 'max-age=60' }));
  const [first, second] = await twice('/plain/x');
  assert.is(status(first), undefined);
  assert.is(status(second), undefined);
  assert.is(origin!.count('/plain/x'), 2);
});

for (const [name, headers, request] of [
  ['no-store', { 'cache-control': 'no-store, max-age=60' }, {}],
  ['private', { 'cache-control': 'private, max-age=60' }, {}],
  ['Authorization without public or s-maxage', { 'cache-control': 'max-age=60' }, { authorization: 'Bearer x' }],
  ['Set-Cookie', { 'cache-control': 'max-age=60', 'set-cookie': 'a=b' }, {}],
  ['Vary: *', { 'cache-control': 'max-age=60', vary: '*' }, {}],
  ['a request with no-store', { 'cache-control': 'max-age=60' }, { 'cache-control': 'no-store' }],
] as const) {
  test(`not stored: ${name}`, async () => {
    const path = `/not-stored/${encodeURIComponent(name)}`;
    origin!.on(path, answer('x', headers));
    const [first, second] = await twice(path, request);
    assert.is(status(first), 'sluice; fwd=miss');
    assert.is(status(second), 'sluice; fwd=miss');
    assert.is(origin!.count(path), 2);
  });
}

test('stored: Authorization with s-maxage', async () => {
  origin!.on('/auth-smaxage', answer('x', { 'cache-control': 's-maxage=60' }));
  const [, second] = await twice('/auth-smaxage', { authorization: 'Bearer x' });
  assert.is(status(second), 'sluice; hit');
  assert.is(origin!.count('/auth-smaxage'), 1);
});

test('s-maxage wins over max-age for a shared cache', async () => {
  origin!.on('/smaxage', answer('x', { 'cache-control': 'max-age=60, s-maxage=0' }));
  const [, second] = await twice('/smaxage');
  assert.not.equal(status(second), 'sluice; hit');
  assert.is(origin!.count('/smaxage'), 2);
});

test('Expires gives freshness when there is no max-age', async () => {
  origin!.on(
    '/expires',
    answer('x', { expires: new Date(Date.now() + 60_000).toUTCString(), date: new Date().toUTCString() }),
  );
  const [, second] = await twice('/expires');
  assert.is(status(second), 'sluice; hit');
});

test('heuristic freshness from Last-Modified for a 200, never for a 302', async () => {
  const lastModified = new Date(Date.now() - 10 * 24 * 3600_000).toUTCString();
  origin!.on('/heuristic', answer('x', { 'last-modified': lastModified }));
  origin!.on('/heuristic-302', answer('x', { 'last-modified': lastModified, location: '/elsewhere' }, 302));
  const [, second] = await twice('/heuristic');
  assert.is(status(second), 'sluice; hit');
  const [, other] = await twice('/heuristic-302');
  assert.is(status(other), 'sluice; fwd=miss');
  assert.is(origin!.count('/heuristic-302'), 2);
});

test('HEAD is answered from a GET entry, without a body', async () => {
  origin!.on('/head', answer('head body', { 'cache-control': 'max-age=60' }));
  await get(port, '/head');
  const head = await get(port, '/head', { method: 'HEAD' });
  assert.is(status(head), 'sluice; hit');
  assert.is(head.body, '');
  assert.is(head.headers['content-length'], '9');
  assert.is(origin!.count('/head'), 1);
});

test('Vary keys the entry on the named request headers', async () => {
  origin!.on('/vary', (req, res) => {
    const body = `lang=${req.headers['accept-language']}`;
    res.writeHead(200, {
      'cache-control': 'max-age=60',
      vary: 'Accept-Language',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
  const en = await get(port, '/vary', { headers: { 'accept-language': 'en' } });
  const fr = await get(port, '/vary', { headers: { 'accept-language': 'fr' } });
  const enAgain = await get(port, '/vary', { headers: { 'accept-language': 'en' } });
  const frAgain = await get(port, '/vary', { headers: { 'accept-language': 'fr' } });
  assert.is(en.body, 'lang=en');
  assert.is(fr.body, 'lang=fr');
  assert.is(status(fr), 'sluice; fwd=miss; stored');
  assert.is(enAgain.body, 'lang=en');
  assert.is(frAgain.body, 'lang=fr');
  assert.is(status(enAgain), 'sluice; hit');
  assert.is(status(frAgain), 'sluice; hit');
  assert.is(origin!.count('/vary'), 2);
});

test('a stale entry is revalidated with If-None-Match; a 304 refreshes it', async () => {
  origin!.on('/revalidate', (req, res) => {
    if (req.headers['if-none-match'] === '"v1"')
      return void res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=60', 'x-refreshed': 'yes' }).end();
    res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=0', 'content-length': '4' });
    res.end('body');
  });
  await get(port, '/revalidate');
  const revalidated = await get(port, '/revalidate');
  assert.is(status(revalidated), 'sluice; fwd=stale; fwd-status=304');
  assert.is(revalidated.body, 'body');
  assert.is(revalidated.headers['x-refreshed'], 'yes');
  assert.is(origin!.requests('/revalidate')[1]!.headers['if-none-match'], '"v1"');
  // The refreshed entry is fresh for 60 s now.
  const hit = await until(
    () => get(port, '/revalidate'),
    (a) => status(a) === 'sluice; hit',
    20,
    50,
  );
  assert.is(hit.body, 'body');
  const count = origin!.count('/revalidate');
  assert.is(status(await get(port, '/revalidate')), 'sluice; hit');
  assert.is(origin!.count('/revalidate'), count);
});

test('a stale entry is revalidated with If-Modified-Since when it has only Last-Modified', async () => {
  const lastModified = new Date(Date.now() - 3600_000).toUTCString();
  origin!.on('/revalidate-date', (req, res) => {
    if (req.headers['if-modified-since'] === lastModified)
      return void res.writeHead(304, { 'cache-control': 'max-age=60' }).end();
    res.writeHead(200, { 'last-modified': lastModified, 'cache-control': 'no-cache', 'content-length': '4' });
    res.end('date');
  });
  await get(port, '/revalidate-date');
  const revalidated = await get(port, '/revalidate-date');
  assert.is(status(revalidated), 'sluice; fwd=stale; fwd-status=304');
  assert.is(revalidated.body, 'date');
});

test('a stale entry whose revalidation brings a new 200 is replaced', async () => {
  let version = 1;
  origin!.on('/replaced', (_req, res) => {
    const body = `v${version++}`;
    res.writeHead(200, { etag: `"${body}"`, 'cache-control': 'max-age=0', 'content-length': body.length });
    res.end(body);
  });
  await get(port, '/replaced');
  const second = await get(port, '/replaced');
  assert.is(second.body, 'v2');
  assert.is(status(second), 'sluice; fwd=stale; fwd-status=200; stored');
});

test('stale-while-revalidate serves the stale entry and revalidates once in the background', async () => {
  let version = 1;
  origin!.on('/swr', (_req, res) => {
    const body = `v${version++}`;
    res.writeHead(200, { 'cache-control': 'max-age=2, stale-while-revalidate=60', 'content-length': body.length });
    res.end(body);
  });
  await get(port, '/swr');
  // Past max-age=2 (Age counts whole seconds): the entry is stale, within its stale-while-revalidate window.
  const stale = await until(
    () => get(port, '/swr'),
    (a) => status(a) !== 'sluice; hit',
    80,
    50,
  );
  assert.is(status(stale), 'sluice; hit; detail=stale-while-revalidate');
  assert.is(stale.body, 'v1');
  const fresh = await until(
    () => get(port, '/swr'),
    (a) => a.body !== 'v1',
    40,
    50,
  );
  assert.is(fresh.body, 'v2');
  assert.is(status(fresh), 'sluice; hit');
  // One background request for the stale entry, however many requests saw it stale.
  assert.is(origin!.count('/swr'), 2);
});

test('stale-if-error serves the stale entry when the origin answers 5xx', async () => {
  let fail = false;
  origin!.on('/sie', (_req, res) => {
    if (fail) return void res.writeHead(503, { 'content-length': '4' }).end('down');
    res.writeHead(200, { 'cache-control': 'max-age=0, stale-if-error=60', etag: '"e"', 'content-length': '2' });
    res.end('ok');
  });
  await get(port, '/sie');
  fail = true;
  const stale = await get(port, '/sie');
  assert.is(stale.status, 200);
  assert.is(stale.body, 'ok');
  assert.is(status(stale), 'sluice; fwd=stale; fwd-status=503; detail=stale-if-error');
});

test('without stale-if-error the origin’s 5xx goes to the client', async () => {
  let fail = false;
  origin!.on('/no-sie', (_req, res) => {
    if (fail) return void res.writeHead(503, { 'content-length': '4' }).end('down');
    res.writeHead(200, { 'cache-control': 'max-age=0', etag: '"e"', 'content-length': '2' });
    res.end('ok');
  });
  await get(port, '/no-sie');
  fail = true;
  const answer503 = await get(port, '/no-sie');
  assert.is(answer503.status, 503);
  assert.is(status(answer503), 'sluice; fwd=stale; fwd-status=503');
});

test('a successful unsafe request invalidates its URL and same-host Location', async () => {
  origin!.on('/item', answer('item', { 'cache-control': 'max-age=60' }));
  origin!.on('/other', answer('other', { 'cache-control': 'max-age=60' }));
  origin!.on('/item-post', (req, res) => {
    req.resume();
    res.writeHead(201, { location: '/other', 'content-length': '0' });
    res.end();
  });
  await get(port, '/item');
  await get(port, '/other');
  // POST to /item itself
  origin!.on('/item', (req, res) => {
    req.resume();
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '5' });
    res.end(req.method === 'POST' ? 'done!' : 'item2');
  });
  const post = await get(port, '/item', { method: 'POST', body: 'x' });
  assert.is(status(post), 'sluice; fwd=method');
  const after = await until(
    () => get(port, '/item'),
    (a) => a.body === 'item2',
    20,
    50,
  );
  assert.is(status(after), 'sluice; fwd=miss; stored');
  assert.is(status(await get(port, '/other')), 'sluice; hit');
  await get(port, '/item-post', { method: 'POST', body: 'x' });
  const other = await until(
    () => get(port, '/other'),
    (a) => status(a) !== 'sluice; hit',
    20,
    50,
  );
  assert.is(status(other), 'sluice; fwd=miss; stored');
});

test('a failed unsafe request invalidates nothing', async () => {
  origin!.on('/kept', (req, res) => {
    req.resume();
    if (req.method === 'DELETE') return void res.writeHead(500, { 'content-length': '0' }).end();
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '4' });
    res.end('kept');
  });
  await get(port, '/kept');
  await get(port, '/kept', { method: 'DELETE' });
  assert.is(status(await get(port, '/kept')), 'sluice; hit');
});

test('an object over max_object_mb streams whole and is not stored', async () => {
  const big = 'x'.repeat(1024 * 1024 + 1);
  origin!.on('/big', answer(big, { 'cache-control': 'max-age=60' }));
  origin!.on('/big-chunked', (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.write(big.slice(0, 600_000));
    res.end(big.slice(600_000));
  });
  const [first, second] = await twice('/big');
  assert.is(first.body.length, big.length);
  assert.is(second.body.length, big.length);
  assert.is(origin!.count('/big'), 2);
  const [chunked, chunkedAgain] = await twice('/big-chunked');
  assert.is(chunked.body.length, big.length);
  assert.is(chunkedAgain.body.length, big.length);
  assert.is(status(chunkedAgain), 'sluice; fwd=miss; stored');
  assert.is(origin!.count('/big-chunked'), 2);
});

test('a chunked response is stored and served chunked', async () => {
  origin!.on('/chunked', (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.write('part one, ');
    res.end('part two');
  });
  const [first, second] = await twice('/chunked');
  assert.is(first.body, 'part one, part two');
  assert.is(second.body, 'part one, part two');
  assert.is(status(second), 'sluice; hit');
  assert.is(second.headers['transfer-encoding'], 'chunked');
});

test('a response cut short is not stored', async () => {
  origin!.on('/truncated', (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '100' });
    res.write('only part of it');
    setTimeout(() => req.socket.destroy(), 20);
  });
  await get(port, '/truncated').catch(() => undefined);
  origin!.on('/truncated', answer('whole now', { 'cache-control': 'max-age=60' }));
  const next = await get(port, '/truncated');
  assert.is(next.body, 'whole now');
  assert.is(status(next), 'sluice; fwd=miss; stored');
  assert.is(origin!.count('/truncated'), 2);
});

test('a request with Cache-Control: no-cache is not answered from the store without the origin', async () => {
  origin!.on('/no-cache-request', answer('x', { 'cache-control': 'max-age=60', etag: '"n"' }));
  await get(port, '/no-cache-request');
  const again = await get(port, '/no-cache-request', { headers: { 'cache-control': 'no-cache' } });
  assert.ok(
    String(again.headers['cache-status']).startsWith('sluice; fwd=stale'),
    String(again.headers['cache-status']),
  );
  assert.is(origin!.count('/no-cache-request'), 2);
});

test("a request handed to Node's HTTP server (Expect) bypasses the cache and says so", async () => {
  origin!.on('/expect', (req, res) => {
    req.resume();
    req.on('end', () => answer('expected', { 'cache-control': 'max-age=60' })(req, res));
  });
  const bypassed = await get(port, '/expect', {
    method: 'GET',
    headers: { expect: '100-continue', 'content-length': '0' },
  });
  assert.is(bypassed.body, 'expected');
  assert.is(status(bypassed), 'sluice; fwd=bypass');
});

test("a hit answers the client's matching If-None-Match or If-Modified-Since with 304", async () => {
  const lastModified = new Date(Date.now() - 3600_000).toUTCString();
  origin!.on(
    '/conditional',
    answer('full body', { 'cache-control': 'max-age=60', etag: '"c1"', 'last-modified': lastModified }),
  );
  await get(port, '/conditional');
  const matched = await get(port, '/conditional', { headers: { 'if-none-match': 'W/"c1"' } });
  assert.is(matched.status, 304);
  assert.is(matched.body, '');
  assert.is(matched.headers.etag, '"c1"');
  assert.is(status(matched), 'sluice; hit');
  const other = await get(port, '/conditional', { headers: { 'if-none-match': '"other"' } });
  assert.is(other.status, 200);
  assert.is(other.body, 'full body');
  const since = await get(port, '/conditional', { headers: { 'if-modified-since': new Date().toUTCString() } });
  assert.is(since.status, 304);
  assert.is(origin!.count('/conditional'), 1);
});

test("the proxy's own answer on a caching route (502) carries Cache-Status too", async () => {
  origin!.on('/reset', (req) => req.socket.destroy());
  const failed = await get(port, '/reset');
  assert.is(failed.status, 502);
  assert.is(status(failed), 'sluice; fwd=miss');
});

test.run();
