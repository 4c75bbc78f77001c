/**
 * ns per `RouteTable.match`, one route against 100 (hosts, wildcards and
 * prefixes mixed), run by hand: `bash scripts/with-node.sh node bench/route-table.ts`.
 *
 * The budget: a listener serves ~80k req/s per core, 12.5 µs a request, so
 * 100 routes may cost ≤ 5% of that, ~600 ns, more than one route. Each
 * request gets Host and target strings of its own, as the HTTP parser gives,
 * so no string hash is already computed when the table looks the Host up.
 * Figures are the median of several runs; they vary with the machine.
 */
import { RouteTable, type RequestFacts, type RouteConfig } from '../src/routing/route-table.ts';

const ITERATIONS = Number(process.env['BENCH_ITERATIONS'] ?? 200_000);
const RUNS = 7;

/** A fresh copy of `text`, not interned, its hash not yet computed. */
const fresh = (text: string) => Buffer.from(text, 'latin1').toString('latin1');

/** Requests for one case, made anew for each run (outside the timing). */
type Requests = () => RequestFacts[];
const requests =
  (host: string, target: string, method = 'GET'): Requests =>
  () =>
    Array.from({ length: ITERATIONS }, () => ({
      method,
      target: fresh(target),
      host: fresh(host),
      header: () => undefined,
    }));

function nsPerMatch(table: RouteTable, make: Requests, expected: string | undefined, runCount = RUNS): number {
  const runs: number[] = [];
  let found: string | undefined;
  for (let run = 0; run < runCount; run++) {
    const facts = make();
    const start = process.hrtime.bigint();
    for (const fact of facts) found = table.match(fact)?.name;
    runs.push(Number(process.hrtime.bigint() - start) / facts.length);
  }
  if (found !== expected) throw new Error(`matched ${found}, expected ${expected}`);
  return runs.sort((a, b) => a - b)[runCount >> 1]!;
}

const one = new RouteTable([{ name: 'all', match: { path_prefix: '/' }, upstream: 'app' }]);

// 100 routes: 30 hosts with 3 prefixes each, 9 wildcard hosts, a catch-all.
const hundred: RouteConfig[] = [];
for (let h = 0; h < 30; h++) {
  for (const prefix of ['/api/v1', '/api/v2', '/static/']) {
    const match = { host: `svc${h}.example.com`, path_prefix: prefix };
    hundred.push({ name: `svc${h}${prefix}`, match, upstream: 'app' });
  }
}
for (let w = 0; w < 9; w++) {
  hundred.push({ name: `wild${w}`, match: { host: `*.zone${w}.example.net`, path_prefix: '/' }, upstream: 'app' });
}
hundred.push({ name: 'fallback', match: {}, upstream: 'app' });
const many = new RouteTable(hundred);

const cases: [string, RouteTable, Requests, string | undefined][] = [
  ['1 route, /v1/users?id=1', one, requests('api.example.com', '/v1/users?id=1'), 'all'],
  ['1 route, percent-encoded path', one, requests('api.example.com', '/%76%31/users?id=1'), 'all'],
  ['100 routes, exact host, 1st prefix', many, requests('svc29.example.com', '/api/v1/users?id=1'), 'svc29/api/v1'],
  ['100 routes, exact host, 3rd prefix', many, requests('svc29.example.com:8080', '/static/app.js'), 'svc29/static/'],
  ['100 routes, wildcard host', many, requests('a.zone8.example.net', '/x'), 'wild8'],
  ['100 routes, unknown host: fallback', many, requests('other.org', '/x'), 'fallback'],
  ['100 routes, no prefix matches: fallback', many, requests('svc29.example.com', '/other'), 'fallback'],
];

// Warm up every case so that the optimizing compiler has seen them all before timing.
for (const [, table, make, expected] of cases) nsPerMatch(table, make, expected, 1);
console.log(`RouteTable.match, median of ${RUNS} runs of ${ITERATIONS} requests, Node ${process.version}`);
for (const [label, table, make, expected] of cases) {
  console.log(`${label.padEnd(42)} ${nsPerMatch(table, make, expected).toFixed(1).padStart(7)} ns/match`);
}
