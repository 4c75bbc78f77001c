/** The route table: matching, default names, strip_prefix, header edits, `-t` checks. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  RouteTable,
  editFlatHeaders,
  editHeaderMap,
  joinedHeader,
  targetAfterStrip,
  type RequestFacts,
  type RouteConfig,
  type RouteMatchConfig,
} from '../../../src/routing/route-table.ts';
import { compileHeaderEdits } from '../../../src/routing/header-edits.ts';

interface Sent {
  method?: string;
  target?: string;
  host?: string;
  headers?: string[]; // flat, as Node's rawHeaders
}
const request = ({ method = 'GET', target = '/', host = 'example.com', headers = [] }: Sent = {}): RequestFacts => ({
  method,
  target,
  host,
  header: (name) => joinedHeader(headers, name),
});
const noHost = (sent: Sent = {}): RequestFacts => ({ ...request(sent), host: undefined });

/** A table of one route per match, named r0, r1…; `matched` answers the name of the route a request takes. */
const table = (...matches: RouteMatchConfig[]) =>
  new RouteTable(matches.map((match, i) => ({ name: `r${i}`, match, upstream: 'app' })));
const matched = (routes: RouteTable, facts: RequestFacts) => routes.match(facts)?.name;
const only = (match: RouteMatchConfig) => {
  const routes = table(match);
  return (facts: RequestFacts) => routes.match(facts) !== undefined;
};

test('first match in array order wins, and an empty match matches everything', () => {
  const routes = table({ path_prefix: '/v1' }, {}, { path_prefix: '/v1/users' });
  assert.is(matched(routes, request({ target: '/v1/users' })), 'r0');
  assert.is(matched(routes, request({ target: '/other' })), 'r1');
  assert.is(matched(routes, request({ method: 'OPTIONS', target: '*' })), 'r1');
});

test('no route matching gives undefined', () => {
  assert.is(table({ path_prefix: '/v1' }).match(request({ target: '/v2' })), undefined);
  assert.is(new RouteTable([]).match(request()), undefined);
});

test('every given field must hold', () => {
  const holds = only({ host: 'api.example.com', path_prefix: '/v1', methods: ['GET'] });
  assert.ok(holds(request({ host: 'api.example.com', target: '/v1' })));
  assert.not.ok(holds(request({ host: 'www.example.com', target: '/v1' })));
  assert.not.ok(holds(request({ host: 'api.example.com', target: '/v2' })));
  assert.not.ok(holds(request({ host: 'api.example.com', target: '/v1', method: 'POST' })));
});

test('host: exact name, case-insensitive on both sides', () => {
  const holds = only({ host: 'API.Example.com' });
  assert.ok(holds(request({ host: 'api.example.com' })));
  assert.ok(holds(request({ host: 'API.EXAMPLE.COM' })));
  assert.not.ok(holds(request({ host: 'api.example.org' })));
  assert.not.ok(holds(request({ host: 'xapi.example.com' })));
});

test('host: the port of the request Host is ignored', () => {
  const holds = only({ host: 'api.example.com' });
  assert.ok(holds(request({ host: 'api.example.com:8080' })));
  assert.ok(holds(request({ host: 'api.example.com:' })));
});

test('host: IPv6 literals, with and without port, bracketed or bare in config', () => {
  assert.ok(only({ host: '[::1]' })(request({ host: '[::1]:80' })));
  assert.ok(only({ host: '[::1]' })(request({ host: '[::1]' })));
  assert.ok(only({ host: '::1' })(request({ host: '[::1]:8080' })));
  assert.ok(only({ host: '[2001:DB8::1]' })(request({ host: '[2001:db8::1]:443' })));
  assert.not.ok(only({ host: '[::1]' })(request({ host: '[::2]:80' })));
});

test('host: *.example.com matches names under it at any depth, not example.com itself', () => {
  const holds = only({ host: '*.example.com' });
  assert.ok(holds(request({ host: 'a.example.com' })));
  assert.ok(holds(request({ host: 'a.b.example.com:8080' })));
  assert.ok(holds(request({ host: 'A.EXAMPLE.COM' })));
  assert.not.ok(holds(request({ host: 'example.com' })));
  assert.not.ok(holds(request({ host: '.example.com' })));
  assert.not.ok(holds(request({ host: 'aexample.com' })));
  assert.not.ok(holds(request({ host: 'a.example.com.evil.net' })));
});

test('host: a request without Host never matches a route with host, but does match one without', () => {
  const routes = table({ host: 'example.com' }, { host: '*.example.com' }, { path_prefix: '/' });
  assert.is(matched(routes, noHost()), 'r2');
  assert.not.ok(only({ host: 'example.com' })(noHost()));
});

test('path_prefix: by whole segment, /v1 is not a prefix of /v10', () => {
  const holds = only({ path_prefix: '/v1' });
  assert.ok(holds(request({ target: '/v1' })));
  assert.ok(holds(request({ target: '/v1/' })));
  assert.ok(holds(request({ target: '/v1/x/y' })));
  assert.not.ok(holds(request({ target: '/v10' })));
  assert.not.ok(holds(request({ target: '/v' })));
  assert.not.ok(holds(request({ target: '/' })));
});

test('path_prefix: the query is ignored', () => {
  const holds = only({ path_prefix: '/v1' });
  assert.ok(holds(request({ target: '/v1?q=1' })));
  assert.not.ok(holds(request({ target: '/v?1' })));
  assert.not.ok(holds(request({ target: '/x?/v1' })));
  // A prefix never reaches into the query, even one written with a '?'.
  assert.not.ok(only({ path_prefix: '/a?b' })(request({ target: '/a?b/c' })));
});

test('path_prefix: a prefix ending in / matches any path starting with it', () => {
  assert.ok(only({ path_prefix: '/' })(request({ target: '/anything/at/all' })));
  const holds = only({ path_prefix: '/v1/' });
  assert.ok(holds(request({ target: '/v1/' })));
  assert.ok(holds(request({ target: '/v1/x' })));
  assert.not.ok(holds(request({ target: '/v1' })));
  assert.not.ok(holds(request({ target: '/v1?q=/' })));
});

test('path_exact: the path without query equals it', () => {
  const holds = only({ path_exact: '/health' });
  assert.ok(holds(request({ target: '/health' })));
  assert.ok(holds(request({ target: '/health?verbose=1' })));
  assert.not.ok(holds(request({ target: '/health/' })));
  assert.not.ok(holds(request({ target: '/healthz' })));
  assert.not.ok(holds(request({ target: '/' })));
});

test('percent-decoding: escapes of unreserved characters are decoded, hex in either case', () => {
  assert.ok(only({ path_prefix: '/v1' })(request({ target: '/%76%31/x' })));
  assert.ok(only({ path_exact: '/a-b.c_d~E' })(request({ target: '/a%2Db%2ec%5Fd%7e%45' })));
  assert.ok(only({ path_exact: '/v1' })(request({ target: '/%76%31?q=%41' })));
  // The config is read the same way.
  assert.ok(only({ path_prefix: '/%7Euser' })(request({ target: '/~user/x' })));
});

test('percent-decoding: other escapes stay encoded, so %2F never splits a segment', () => {
  assert.not.ok(only({ path_prefix: '/v1/x' })(request({ target: '/v1%2Fx' })));
  assert.not.ok(only({ path_prefix: '/v1' })(request({ target: '/v1%2Fx' })));
  assert.ok(only({ path_exact: '/v1%2Fx' })(request({ target: '/v1%2Fx' })));
  assert.not.ok(only({ path_exact: '/a b' })(request({ target: '/a%20b' })));
  assert.ok(only({ path_exact: '/a%20b' })(request({ target: '/a%20b' })));
  // %25 is '%', not unreserved: no double decoding.
  assert.not.ok(only({ path_exact: '/v1' })(request({ target: '/%2576%31' })));
});

test('percent-decoding: malformed escapes are kept as sent', () => {
  assert.ok(only({ path_exact: '/a%zz%4' })(request({ target: '/a%zz%4' })));
  assert.ok(only({ path_exact: '/a%' })(request({ target: '/a%' })));
  assert.ok(only({ path_exact: '/a%4x' })(request({ target: '/a%4x' })));
});

test('.. segments are not resolved: /v1/../admin is under /v1, not /admin', () => {
  const routes = table({ path_prefix: '/admin' }, { path_prefix: '/v1' });
  assert.is(matched(routes, request({ target: '/v1/../admin' })), 'r1');
  assert.is(matched(routes, request({ target: '/v1/%2e%2e/admin' })), 'r1');
});

test('methods: the method is in the list, case-sensitively', () => {
  const holds = only({ methods: ['GET', 'HEAD'] });
  assert.ok(holds(request({ method: 'GET' })));
  assert.ok(holds(request({ method: 'HEAD' })));
  assert.not.ok(holds(request({ method: 'POST' })));
  assert.not.ok(holds(request({ method: 'get' })));
});

test('headers: each present with exactly that value, the name case-insensitive', () => {
  const holds = only({ headers: { 'X-Tenant': 'blue', accept: 'application/json' } });
  assert.ok(holds(request({ headers: ['x-tenant', 'blue', 'Accept', 'application/json'] })));
  assert.ok(holds(request({ headers: ['X-TENANT', 'blue', 'ACCEPT', 'application/json'] })));
  assert.not.ok(holds(request({ headers: ['X-Tenant', 'Blue', 'Accept', 'application/json'] })));
  assert.not.ok(holds(request({ headers: ['X-Tenant', 'blue'] })));
  assert.not.ok(holds(request({ headers: ['X-Tenant', 'blue-ish', 'Accept', 'application/json'] })));
});

test('headers: a header sent several times is compared as its values joined with ", "', () => {
  const holds = only({ headers: { 'x-tag': 'a, b' } });
  assert.ok(holds(request({ headers: ['X-Tag', 'a', 'x-tag', 'b'] })));
  assert.not.ok(holds(request({ headers: ['X-Tag', 'a'] })));
  assert.not.ok(only({ headers: { 'x-tag': 'a' } })(request({ headers: ['X-Tag', 'a', 'x-tag', 'b'] })));
});

test('needsHeaders: only routes with match.headers ask the caller for header()', () => {
  const routes = table({ path_prefix: '/' }, { headers: { 'x-a': '1' } });
  assert.equal(
    routes.routes.map((r) => r.needsHeaders),
    [false, true],
  );
  assert.ok(routes.needsHeaders);
  assert.not.ok(table({ path_prefix: '/' }).needsHeaders);
  let asked = 0;
  const facts = { ...request(), header: () => (asked++, undefined) };
  assert.is(table({ host: 'example.com' }, { headers: { 'x-a': '1' } }).match(facts)?.name, 'r0');
  assert.is(asked, 0);
});

test('names: name when given, else the index in the array', () => {
  const routes = new RouteTable([
    { match: {}, upstream: 'a' },
    { name: 'api', match: {}, upstream: 'a' },
    { name: null, match: {}, upstream: 'a' },
  ]);
  assert.equal(
    routes.routes.map((r) => r.name),
    ['0', 'api', '2'],
  );
  assert.equal(
    routes.routes.map((r) => r.index),
    [0, 1, 2],
  );
});

test('route fields: upstream, respond with defaults, cache, and no edits give null', () => {
  const [proxied, answered] = new RouteTable([
    { match: {}, upstream: 'app', cache: true },
    { match: {}, respond: { status: 204 }, request_headers: { set: {}, remove: [] } },
  ]).routes;
  assert.is(proxied!.upstream, 'app');
  assert.is(proxied!.respond, null);
  assert.is(proxied!.cache, true);
  assert.is(proxied!.requestHeaders, null);
  assert.is(proxied!.responseHeaders, null);
  assert.is(answered!.upstream, null);
  assert.equal(answered!.respond, { status: 204, body: '', headers: {} });
  assert.is(answered!.cache, false);
  assert.is(answered!.requestHeaders, null);
});

test('stripPrefix: the prefix when strip_prefix is set with path_prefix, else null', () => {
  const routes = new RouteTable([
    { match: { path_prefix: '/v1' }, upstream: 'a', strip_prefix: true },
    { match: { path_prefix: '/v1' }, upstream: 'a' },
    { match: {}, upstream: 'a', strip_prefix: true },
  ]);
  assert.equal(
    routes.routes.map((r) => r.stripPrefix),
    ['/v1', null, null],
  );
});

test('targetAfterStrip: the prefix segments go, the rest and the query stay, always starting with /', () => {
  assert.is(targetAfterStrip('/v1/users?q=1', '/v1'), '/users?q=1');
  assert.is(targetAfterStrip('/v1', '/v1'), '/');
  assert.is(targetAfterStrip('/v1?q=1', '/v1'), '/?q=1');
  assert.is(targetAfterStrip('/v1/', '/v1'), '/');
  assert.is(targetAfterStrip('/a/b/c/d', '/a/b'), '/c/d');
});

test('targetAfterStrip: a prefix ending in / strips like the one without; / strips nothing', () => {
  assert.is(targetAfterStrip('/v1/users', '/v1/'), '/users');
  assert.is(targetAfterStrip('/v1/', '/v1/'), '/');
  assert.is(targetAfterStrip('/x?q=1', '/'), '/x?q=1');
});

test('targetAfterStrip: the query is never taken for segments', () => {
  assert.is(targetAfterStrip('/a?x/y', '/a/b'), '/?x/y');
});

test('targetAfterStrip: after a match through percent-decoding, the rest is sent as the client wrote it', () => {
  const route = new RouteTable([{ match: { path_prefix: '/v1' }, upstream: 'a', strip_prefix: true }]).match(
    request({ target: '/%76%31/x%2Fy%7e?q=%41' }),
  );
  assert.is(route?.stripPrefix, '/v1');
  assert.is(targetAfterStrip('/%76%31/x%2Fy%7e?q=%41', route!.stripPrefix!), '/x%2Fy%7e?q=%41');
  assert.is(targetAfterStrip('/%76%31', '/v1'), '/');
});

test('editFlatHeaders: removes case-insensitively, keeping the order of the rest', () => {
  const edits = compileHeaderEdits({ remove: ['X-Secret', 'cookie'] })!;
  const out = editFlatHeaders(['Host', 'a', 'x-secret', '1', 'Accept', '*/*', 'COOKIE', 'c', 'X-SECRET', '2'], edits);
  assert.equal(out, ['Host', 'a', 'Accept', '*/*']);
});

test('editFlatHeaders: set replaces every line of that name with one line', () => {
  const edits = compileHeaderEdits({ set: { 'X-Env': 'prod' } })!;
  const out = editFlatHeaders(['x-env', 'dev', 'Accept', '*/*', 'X-ENV', 'test'], edits);
  assert.equal(out, ['Accept', '*/*', 'X-Env', 'prod']);
  assert.equal(editFlatHeaders([], edits), ['X-Env', 'prod']);
});

test('header edits: remove then set, so a name both removed and set ends up set', () => {
  const edits = compileHeaderEdits({ set: { 'X-A': 'new' }, remove: ['x-a', 'x-b'] })!;
  assert.equal(editFlatHeaders(['X-A', 'old', 'X-B', 'b'], edits), ['X-A', 'new']);
  const map: Record<string, string | string[] | undefined> = { 'x-a': 'old', 'x-b': ['1', '2'], 'x-c': 'c' };
  editHeaderMap(map, edits);
  assert.equal(map, { 'x-c': 'c', 'x-a': 'new' });
});

test('editHeaderMap: removes and sets by lowercase name, replacing a multi-valued header', () => {
  const edits = compileHeaderEdits({ set: { 'Set-Cookie': 'a=1' }, remove: ['Server'] })!;
  const map: Record<string, string | string[] | undefined> = { server: 'x', 'set-cookie': ['a=0', 'b=0'] };
  editHeaderMap(map, edits);
  assert.equal(map, { 'set-cookie': 'a=1' });
});

test('compileHeaderEdits: names set twice in different case are one header, the later wins', () => {
  const edits = compileHeaderEdits({ set: { 'X-A': '1', 'x-a': '2' } })!;
  assert.equal(edits.set, [['x-a', '2']]);
  assert.equal(editFlatHeaders(['X-A', '0'], edits), ['x-a', '2']);
  assert.is(compileHeaderEdits(null), null);
  assert.is(compileHeaderEdits({}), null);
});

test('route header edits are compiled from request_headers and response_headers', () => {
  const [route] = new RouteTable([
    { match: {}, upstream: 'a', request_headers: { remove: ['X-B'] }, response_headers: { set: { Server: 'me' } } },
  ]).routes;
  assert.equal([...route!.requestHeaders!.remove], ['x-b']);
  assert.equal(route!.responseHeaders!.set, [['Server', 'me']]);
});

const unreachable = (...matches: RouteMatchConfig[]) =>
  table(...matches)
    .unreachable()
    .map(({ route, shadowedBy }) => `${route}<${shadowedBy}`)
    .join(' ');

test('unreachable: everything after a route with an empty match', () => {
  assert.is(unreachable({ path_prefix: '/a' }, {}, { host: 'x.com' }, {}), 'r2<r1 r3<r1');
});

test('unreachable: the shadowing route reported is the first one', () => {
  assert.is(unreachable({}, {}, { path_prefix: '/x' }), 'r1<r0 r2<r0');
});

test('unreachable: path_prefix / shadows later routes with a path field, not those without', () => {
  const shadowed = unreachable({ path_prefix: '/' }, { path_prefix: '/v1' }, { path_exact: '/x', methods: ['GET'] });
  assert.is(shadowed, 'r1<r0 r2<r0');
  // Without a path field a route still takes `OPTIONS *`, which path_prefix / does not.
  assert.is(unreachable({ path_prefix: '/' }, { methods: ['GET'] }), '');
});

test('unreachable: an identical match, and narrower ones of each field', () => {
  assert.is(unreachable({ host: 'a.com', methods: ['GET'] }, { host: 'A.com', methods: ['GET'] }), 'r1<r0');
  assert.is(unreachable({ path_prefix: '/v1' }, { path_prefix: '/v1/users' }, { path_exact: '/v1' }), 'r1<r0 r2<r0');
  assert.is(unreachable({ host: '*.a.com' }, { host: 'x.a.com' }, { host: '*.b.a.com' }), 'r1<r0 r2<r0');
  assert.is(unreachable({ methods: ['GET', 'POST'] }, { methods: ['GET'] }), 'r1<r0');
  assert.is(unreachable({ headers: { 'X-A': '1' } }, { headers: { 'x-a': '1', 'x-b': '2' } }), 'r1<r0');
});

test('unreachable: nothing reported when the later route can take a request the earlier one does not', () => {
  assert.is(unreachable({ path_prefix: '/v1' }, { path_prefix: '/v10' }), '');
  assert.is(unreachable({ path_prefix: '/v1/' }, { path_prefix: '/v1' }), '');
  assert.is(unreachable({ path_exact: '/v1' }, { path_prefix: '/v1' }), '');
  assert.is(unreachable({ host: '*.a.com' }, { host: 'a.com' }), '');
  assert.is(unreachable({ host: '*.b.a.com' }, { host: '*.a.com' }), '');
  assert.is(unreachable({ host: '*.a.com' }, { host: '*.xa.com' }), '');
  assert.is(unreachable({ host: 'a.com' }, {}), '');
  assert.is(unreachable({ methods: ['GET'] }, { methods: ['GET', 'POST'] }), '');
  assert.is(unreachable({ methods: ['GET'] }, { path_prefix: '/' }), '');
  assert.is(unreachable({ headers: { 'x-a': '1' } }, { headers: { 'x-a': '2' } }), '');
  assert.is(unreachable({ path_prefix: '/v1', host: 'a.com' }, { path_prefix: '/v1/x' }), '');
});

test('upstreamNames: every upstream a route refers to, once', () => {
  const routes = new RouteTable([
    { match: {}, upstream: 'api' },
    { match: {}, respond: { status: 404 } },
    { match: {}, upstream: 'web' },
    { match: {}, upstream: 'api' },
  ]);
  assert.equal([...routes.upstreamNames()].sort(), ['api', 'web']);
});

test('host cache: answers stay right once the cache is full, for exact, wildcard and unknown hosts', () => {
  const routes: RouteConfig[] = [
    { name: 'exact', match: { host: 'a.example.com' }, upstream: 'x' },
    { name: 'wild', match: { host: '*.example.com', path_prefix: '/w' }, upstream: 'x' },
    { name: 'other', match: { host: 'b.example.org' }, upstream: 'x' },
    { name: 'rest', match: { path_prefix: '/' }, upstream: 'x' },
  ];
  const cases: [string, string, string][] = [
    ['a.example.com', '/', 'exact'],
    ['A.Example.Com:81', '/w', 'exact'],
    ['z.example.com', '/w', 'wild'],
    ['z.example.com', '/', 'rest'],
    ['b.example.org', '/w', 'other'],
    ['unknown.net', '/w', 'rest'],
  ];
  const check = (routeTable: RouteTable, label: string) => {
    for (const [host, target, expected] of cases) {
      assert.is(matched(routeTable, request({ host, target })), expected, `${label}: ${host}${target}`);
    }
  };
  for (const size of [0, 1, 2]) {
    const small = new RouteTable(routes, { hostCacheSize: size });
    check(small, `cache ${size}, first`);
    // Fill the cache with other hosts, then ask again: new and cached hosts alike.
    for (let i = 0; i < 10; i++) small.match(request({ host: `filler${i}.example.com` }));
    check(small, `cache ${size}, full`);
    check(new RouteTable(routes, { hostCacheSize: size }), `cache ${size}, fresh`);
  }
  const bounded = new RouteTable(routes, { hostCacheSize: 3 });
  for (let i = 0; i < 10; i++) bounded.match(request({ host: `filler${i}.example.com` }));
  check(bounded, 'cache 3, full');
  assert.is(bounded.cachedHosts, 3);
  const big = new RouteTable(routes);
  check(big, 'default, first');
  check(big, 'default, cached');
  // Overlong Host values are answered but never cached.
  const cached = big.cachedHosts;
  assert.is(matched(big, request({ host: `${'x'.repeat(400)}.example.com`, target: '/w' })), 'wild');
  assert.is(big.cachedHosts, cached);
});

test('joinedHeader: the lines of one name joined with ", ", undefined when absent', () => {
  assert.is(joinedHeader(['A', '1', 'b', '2', 'a', '3'], 'a'), '1, 3');
  assert.is(joinedHeader(['A', '1'], 'c'), undefined);
});

test.run();
