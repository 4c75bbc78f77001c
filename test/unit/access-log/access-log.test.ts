/**
 * The access log's two line formats (JSON that parses back to the record for
 * any input; nginx's combined byte for byte) and its writer's batching, on
 * real files in a temporary directory.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeJsonLine } from '../../../src/access-log/json-bytes.ts';
import { RequestId } from '../../../src/listener/request-id.ts';
import { type AccessRecord, formatCombined, formatJson } from '../../../src/access-log/record.ts';
import { AccessLogWriter } from '../../../src/access-log/writer.ts';

const KEYS = [
  'time',
  'pid',
  'thread',
  'remote_addr',
  'method',
  'path',
  'protocol',
  'host',
  'status',
  'bytes_sent',
  'duration_ms',
  'route',
  'upstream',
  'backend',
  'upstream_status',
  'attempts',
  'error',
  'request_id',
  'user_agent',
  'referer',
];
const STRING_KEYS = [
  'remote_addr',
  'method',
  'path',
  'protocol',
  'host',
  'route',
  'upstream',
  'backend',
  'error',
  'request_id',
  'user_agent',
  'referer',
] as const;
const T = Date.UTC(2026, 11, 1, 21, 5, 33, 120);
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const RECORD_URL = new URL('../../../src/access-log/record.ts', import.meta.url).href;
const WRITER_URL = new URL('../../../src/access-log/writer.ts', import.meta.url).href;

function record(overrides: Partial<AccessRecord> = {}): AccessRecord {
  return {
    time: T,
    pid: 4242,
    thread: 3,
    remote_addr: '203.0.113.7',
    method: 'GET',
    path: '/x?y=1',
    protocol: 'HTTP/1.1',
    host: 'example.com',
    status: 200,
    bytes_sent: 1234,
    duration_ms: 12.3456789,
    route: 'api',
    upstream: 'default',
    backend: '10.0.0.1:8080',
    upstream_status: 200,
    attempts: 1,
    error: null,
    request_id: 'req-1',
    user_agent: 'curl/8.5.0',
    referer: 'https://example.com/',
    ...overrides,
  };
}

/** A seeded generator: a failure reproduces. */
function random(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-access-log-'));
let files = 0;
const newFile = () => path.join(dir, `access-${++files}.log`);
const read = (file: string) => fs.readFileSync(file, 'utf8');
const size = (file: string) => fs.statSync(file).size;
const lines = (file: string) => read(file).split('\n').slice(0, -1);
/** A JSON line read back: the record's keys with JSON's values; the time is the one read as text. */
interface JsonLine {
  [key: string]: unknown;
  time: string;
}
const parseLine = (line: string) => JSON.parse(line) as JsonLine;

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The process's $time_local for ms, worked out apart from the module: what nginx would print here. */
function expectedTimeLocal(ms: number): string {
  const d = new Date(ms);
  const east = -d.getTimezoneOffset();
  const p = (n: number) => String(n).padStart(2, '0');
  const month = d.toLocaleString('en-US', { month: 'short' });
  const offset = `${east < 0 ? '-' : '+'}${p(Math.floor(Math.abs(east) / 60))}${p(Math.abs(east) % 60)}`;
  const clock = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  return `${p(d.getDate())}/${month}/${d.getFullYear()}:${clock} ${offset}`;
}

test('JSON: one line, the keys in order, the values as given', () => {
  const line = formatJson(record());
  assert.ok(line.endsWith('\n'));
  assert.is(line.indexOf('\n'), line.length - 1);
  const parsed = parseLine(line);
  assert.equal(Object.keys(parsed), KEYS);
  assert.equal(parsed, {
    time: '2026-12-01T21:05:33.120Z',
    pid: 4242,
    thread: 3,
    remote_addr: '203.0.113.7',
    method: 'GET',
    path: '/x?y=1',
    protocol: 'HTTP/1.1',
    host: 'example.com',
    status: 200,
    bytes_sent: 1234,
    duration_ms: 12.346,
    route: 'api',
    upstream: 'default',
    backend: '10.0.0.1:8080',
    upstream_status: 200,
    attempts: 1,
    error: null,
    request_id: 'req-1',
    user_agent: 'curl/8.5.0',
    referer: 'https://example.com/',
  });
  assert.match(parsed.time, ISO);
});

test('JSON: absent values are null', () => {
  const absent = {
    host: null,
    route: null,
    upstream: null,
    backend: null,
    upstream_status: null,
    error: null,
    request_id: null,
    user_agent: null,
    referer: null,
  };
  const parsed = parseLine(formatJson(record({ ...absent, status: 499, attempts: 0, error: 'client_abort' })));
  assert.equal(Object.keys(parsed), KEYS);
  for (const key of Object.keys(absent)) if (key !== 'error') assert.is(parsed[key], null, key);
  assert.is(parsed.error, 'client_abort');
  assert.is(parsed.status, 499);
  assert.is(parsed.attempts, 0);
});

test('JSON: the time is what toISOString gives, within a second, across seconds, before 1970', () => {
  const next = random(11);
  const times = [0, 1, 999, 1000, 1001, -1, -999, -1000, -1001, T, T + 1, T + 880, T + 881, 253402300799999, 1.7, -1.7];
  for (let i = 0; i < 2000; i++) times.push(Math.floor(next() * 4e12) - 1e12);
  // Runs of times in the same second, as a busy listener has: the per-second cache must not stick.
  for (let i = 0; i < 2000; i++) times.push(T + Math.floor(i / 7) * 3);
  for (const time of times) {
    const parsed = parseLine(formatJson(record({ time })));
    assert.is(parsed.time, new Date(time).toISOString(), String(time));
    assert.match(parsed.time, ISO);
  }
});

test('JSON: duration_ms rounded to 3 decimals; NaN and Infinity still give valid JSON', () => {
  assert.is(parseLine(formatJson(record({ duration_ms: 0.0004 }))).duration_ms, 0);
  assert.is(parseLine(formatJson(record({ duration_ms: 1.0005 }))).duration_ms, 1.001);
  assert.is(parseLine(formatJson(record({ duration_ms: 250 }))).duration_ms, 250);
  const parsed = parseLine(formatJson(record({ duration_ms: NaN, bytes_sent: Infinity })));
  assert.is(parsed.duration_ms, null);
  assert.is(parsed.bytes_sent, null);
});

test('JSON: hostile strings in every string field read back the same', () => {
  const hostile = [
    '"',
    '\\',
    '\\"',
    '"\\',
    '\u0000',
    '\u0000\u0001\u001f',
    '\n',
    '\r\n',
    '\t\b\f\v',
    '\u007f',
    '\u0085',
    '\u2028\u2029',
    'é',
    '漢字',
    '🎉',
    '\ud800',
    '\udfff',
    'a\ud83dz',
    '\udc00\ud800',
    '</script>',
    '{"a":1}',
    '',
    ' ',
    '\\u0000',
    '%00',
    '\ufeff',
    '\uffff',
    `${'x'.repeat(5000)}"\u0000`,
  ];
  for (const text of hostile) {
    const overrides: Partial<AccessRecord> = {};
    for (const key of STRING_KEYS) overrides[key] = text;
    const line = formatJson(record(overrides));
    assert.is(line.indexOf('\n'), line.length - 1, JSON.stringify(text));
    const parsed = parseLine(line);
    assert.equal(Object.keys(parsed), KEYS);
    for (const key of STRING_KEYS) assert.is(parsed[key], text, `${key} ${JSON.stringify(text)}`);
  }
});

test("JSON: the bytes written without a string are formatJson's bytes, for common and odd records", () => {
  const next = random(29);
  const pick = <T>(values: readonly T[]) => values[Math.floor(next() * values.length)]!;
  const texts = ['/', '/v1/users?q=1', 'a b', '/%7E', '"', '\\', '\u0000', 'é', '漢', '\ud800', '', '~'.repeat(300)];
  const numbers = [0, 1, 9, 10, 99, 100, 12345, 2 ** 53 - 1, 2 ** 53, -1, 1.5, NaN, Infinity];
  const durations = [0, 0.0004, 0.0005, 0.05, 0.25, 1, 1.0005, 12.3456789, 250, 999.9999, -0.2, 1e12, 1e13, NaN];
  const times = [T, T + 1, T + 999, 0, 1, -1, 1.7, -1000.5, NaN, 253402300799999];
  const out = Buffer.alloc(70_000);
  let taken = 0;
  for (let i = 0; i < 5000; i++) {
    const r = record({
      time: i % 3 === 0 ? pick(times) : T + Math.floor(i / 5),
      path: pick(texts),
      request_id: pick([...texts, null]),
      bytes_sent: pick(numbers),
      duration_ms: pick(durations),
      status: pick([200, 404, 499]),
      upstream_status: pick([200, null]),
      host: pick(['a.example', null, 'é']),
      user_agent: pick(['curl/8', null, '"x"']),
      route: pick(['api', null]),
      error: pick([null, 'ECONNREFUSED']),
    });
    let expected: string;
    try {
      expected = formatJson(r);
    } catch {
      continue; // A time Date cannot hold throws there, as toISOString does; it must not write here either.
    }
    const at = i % 100;
    const end = encodeJsonLine(r, out, at);
    if (end < 0) continue;
    taken++;
    assert.is(out.subarray(at, end).toString('utf8'), expected, JSON.stringify(r));
  }
  // Both ways are exercised: about one record in eight here has only values the byte writer takes.
  assert.ok(taken > 300, `taken ${taken}`);
});

test('JSON: a request id object writes what its value reads, new or sent by the client', () => {
  const out = Buffer.alloc(4096);
  for (const id of [
    RequestId.from('x-request-id', undefined),
    RequestId.from('x-request-id', 'client-7'),
    RequestId.from('x-request-id', 'caf\u00e9'),
  ]) {
    const r = record({ request_id: id });
    const expected = formatJson(r);
    assert.is(parseLine(expected).request_id, id.value);
    const end = encodeJsonLine(r, out, 0);
    // A client's id past ASCII is left to formatJson, which escapes and encodes it.
    if (end >= 0) assert.is(out.subarray(0, end).toString(), expected);
    else assert.is(id.value, 'caf\u00e9');
  }
});

test('JSON: without the room for a line, nothing is written', () => {
  const r = record();
  const line = Buffer.from(formatJson(r));
  const out = Buffer.alloc(line.length + 10, 0x2a);
  assert.is(encodeJsonLine(r, out, 20), -1);
  assert.ok(out.every((byte) => byte === 0x2a));
  const roomy = Buffer.alloc(line.length + 200);
  assert.is(roomy.subarray(0, encodeJsonLine(r, roomy, 0)).toString(), line.toString());
});

test("combined: nginx's line byte for byte", () => {
  const expected = `203.0.113.7 - - [${expectedTimeLocal(T)}] "GET /x?y=1 HTTP/1.1" 200 1234 "https://example.com/" "curl/8.5.0"\n`;
  if (new Date(T).getTimezoneOffset() === 0) {
    // The runner is in UTC (as CI is): the literal line, not one derived like the module's.
    assert.is(
      expected,
      '203.0.113.7 - - [01/Dec/2026:21:05:33 +0000] "GET /x?y=1 HTTP/1.1" 200 1234 ' +
        '"https://example.com/" "curl/8.5.0"\n',
    );
  }
  assert.is(formatCombined(record()), expected);
  assert.is(
    formatCombined(record({ status: 499, bytes_sent: 0, method: 'POST', path: '/', protocol: 'HTTP/1.0' })),
    `203.0.113.7 - - [${expectedTimeLocal(T)}] "POST / HTTP/1.0" 499 0 "https://example.com/" "curl/8.5.0"\n`,
  );
});

test('combined: an absent referer or user agent is "-", an empty one ""', () => {
  const line = formatCombined(record({ referer: null, user_agent: null }));
  assert.ok(line.endsWith(' 200 1234 "-" "-"\n'), line);
  assert.ok(formatCombined(record({ referer: '', user_agent: '' })).endsWith(' 200 1234 "" ""\n'));
});

test("combined: escapes as nginx's escape=default does", () => {
  const line = formatCombined(
    record({
      path: '/a"b\\c?d=\u0001\u007f%20 é',
      user_agent: 'Mo"zilla\t\u00ff€🎉',
      referer: 'x\ud800y\n',
    }),
  );
  assert.is(
    line,
    `203.0.113.7 - - [${expectedTimeLocal(T)}] ` +
      '"GET /a\\x22b\\x5Cc?d=\\x01\\x7F%20 \\xE9 HTTP/1.1" 200 1234 ' +
      '"x\\xEF\\xBF\\xBDy\\x0A" "Mo\\x22zilla\\x09\\xFF\\xE2\\x82\\xAC\\xF0\\x9F\\x8E\\x89"\n',
  );
  // Everything printable in ASCII but '"' and '\' is left as it is.
  let printable = '';
  for (let c = 0x20; c < 0x7f; c++) if (c !== 0x22 && c !== 0x5c) printable += String.fromCharCode(c);
  assert.ok(formatCombined(record({ user_agent: printable })).endsWith(`"${printable}"\n`));
});

test("combined: the time in the process's time zone, with its offset at that moment", () => {
  const times = [T, Date.UTC(2026, 6, 4, 12, 0, 0, 5), Date.UTC(2026, 6, 4, 12, 0, 1, 999)];
  const script = `import { formatCombined } from ${JSON.stringify(RECORD_URL)};
    const base = JSON.parse(process.env.RECORD);
    for (const time of ${JSON.stringify(times)}) process.stdout.write(formatCombined({ ...base, time }));`;
  const cases: Record<string, string[]> = {
    UTC: ['01/Dec/2026:21:05:33 +0000', '04/Jul/2026:12:00:00 +0000', '04/Jul/2026:12:00:01 +0000'],
    'America/New_York': ['01/Dec/2026:16:05:33 -0500', '04/Jul/2026:08:00:00 -0400', '04/Jul/2026:08:00:01 -0400'],
    'Asia/Kolkata': ['02/Dec/2026:02:35:33 +0530', '04/Jul/2026:17:30:00 +0530', '04/Jul/2026:17:30:01 +0530'],
  };
  for (const [tz, expected] of Object.entries(cases)) {
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, TZ: tz, RECORD: JSON.stringify(record()) },
      encoding: 'utf8',
    });
    assert.is(child.status, 0, child.stderr);
    const stamps = child.stdout
      .split('\n')
      .slice(0, -1)
      .map((line) => /\[([^\]]+)\]/.exec(line)?.[1]);
    assert.equal(stamps, expected, tz);
  }
});

test('writer: lines reach the file at flush, not at write, whole', () => {
  const file = newFile();
  const writer = new AccessLogWriter({ file, format: 'json' });
  for (let i = 0; i < 3; i++) writer.write(record({ request_id: `r${i}` }));
  assert.is(size(file), 0);
  writer.flush();
  assert.equal(
    lines(file).map((line) => parseLine(line).request_id),
    ['r0', 'r1', 'r2'],
  );
  writer.flush();
  assert.is(lines(file).length, 3, 'a flush with nothing batched writes nothing');
  writer.close();
});

test('writer: the combined format writes combined lines', () => {
  const file = newFile();
  const writer = new AccessLogWriter({ file, format: 'combined' });
  writer.write(record());
  writer.close();
  assert.is(read(file), formatCombined(record()));
});

test('writer: the 100 ms timer flushes without a call to flush', async () => {
  const file = newFile();
  const writer = new AccessLogWriter({ file, format: 'json' });
  const start = Date.now();
  writer.write(record());
  writer.write(record());
  assert.is(size(file), 0);
  for (let i = 0; i < 200 && size(file) === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.is(lines(file).length, 2);
  assert.ok(Date.now() - start >= 50, 'flushed by the timer, not at once');
  writer.close();
});

test('writer: close flushes, and a write after close is counted as dropped', () => {
  const file = newFile();
  const writer = new AccessLogWriter({ file, format: 'json' });
  writer.write(record());
  writer.close();
  assert.is(lines(file).length, 1);
  writer.write(record());
  writer.flush();
  writer.close();
  assert.is(lines(file).length, 1);
  assert.is(writer.dropped, 1);
});

test('writer: a batch reaching 64 KiB is written at once; so is a line longer than that', () => {
  const file = newFile();
  const writer = new AccessLogWriter({ file, format: 'json' });
  let written = 0;
  while (size(file) === 0) {
    writer.write(record({ request_id: String(written++), user_agent: 'ü'.repeat(300) }));
    assert.ok(written < 1000, 'the batch never went out');
  }
  assert.ok(size(file) <= 64 * 1024, String(size(file)));
  assert.ok(read(file).endsWith('\n'));
  const whole = lines(file).length;
  assert.ok(whole > 50 && whole < written, String(whole));
  const long = 'x'.repeat(100_000);
  writer.write(record({ request_id: 'long', user_agent: long }));
  const all = lines(file).map((line) => parseLine(line));
  assert.is(all.length, written + 1, 'the batch before the long line went out first');
  assert.equal(
    all.map((r) => r.request_id),
    [...Array.from({ length: written }, (_, i) => String(i)), 'long'],
  );
  assert.is(all.at(-1)?.user_agent, long);
  writer.close();
});

test('writer: reopen after a rename: old lines stay in the moved file, new ones go to the path', () => {
  const file = newFile();
  const writer = new AccessLogWriter({ file, format: 'json' });
  writer.write(record({ request_id: 'a' }));
  writer.flush();
  fs.renameSync(file, `${file}.1`);
  writer.write(record({ request_id: 'b' }));
  writer.reopen();
  writer.write(record({ request_id: 'c' }));
  writer.close();
  assert.equal(
    lines(`${file}.1`).map((line) => parseLine(line).request_id),
    ['a', 'b'],
  );
  assert.equal(
    lines(file).map((line) => parseLine(line).request_id),
    ['c'],
  );
});

test('writer: when reopen cannot open the path, lines keep going to the moved file', () => {
  const sub = path.join(dir, 'rotated-dir');
  fs.mkdirSync(sub);
  const file = path.join(sub, 'access.log');
  const writer = new AccessLogWriter({ file, format: 'json' });
  fs.renameSync(sub, `${sub}.moved`);
  writer.reopen();
  assert.is(writer.lastError, 'ENOENT');
  writer.write(record());
  writer.close();
  assert.is(lines(path.join(`${sub}.moved`, 'access.log')).length, 1);
  assert.is(writer.dropped, 0);
});

test('writer: a missing directory fails at construction with ENOENT', () => {
  try {
    new AccessLogWriter({ file: path.join(dir, 'no-such-dir', 'access.log'), format: 'json' });
    assert.unreachable('constructed');
  } catch (error) {
    assert.is((error as NodeJS.ErrnoException).code, 'ENOENT');
  }
});

test('writer: two writers on one file, in random batches, give 2,000 whole lines', () => {
  const file = newFile();
  const writers = [new AccessLogWriter({ file, format: 'json' }), new AccessLogWriter({ file, format: 'json' })];
  const next = random(5);
  const counts = [0, 0];
  while (counts[0]! < 1000 || counts[1]! < 1000) {
    const w = counts[0]! < 1000 && (counts[1]! >= 1000 || next() < 0.5) ? 0 : 1;
    writers[w]!.write(record({ thread: w, request_id: String(counts[w]!++), user_agent: 'u'.repeat(next() * 400) }));
    if (next() < 0.03) writers[Math.floor(next() * 2)]!.flush();
  }
  for (const writer of writers) writer.close();
  const all = lines(file).map((line) => parseLine(line));
  assert.is(all.length, 2000);
  for (const w of [0, 1]) {
    const ids = all.filter((r) => r.thread === w).map((r) => r.request_id);
    assert.equal(
      ids,
      Array.from({ length: 1000 }, (_, i) => String(i)),
      `writer ${w}: every line, in order`,
    );
  }
});

test('writer: threads appending at the same time never tear a line', async () => {
  const file = newFile();
  const threads = 4;
  const perThread = 3000;
  const code = `const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.url).then(({ AccessLogWriter }) => {
      const writer = new AccessLogWriter({ file: workerData.file, format: 'json' });
      for (let i = 0; i < workerData.count; i++) {
        writer.write({ ...workerData.record, thread: workerData.thread, request_id: String(i),
          user_agent: 'z'.repeat((i * 37) % 700) });
        if (i % 17 === 0) writer.flush();
      }
      writer.close();
      parentPort.postMessage('done');
    });`;
  await Promise.all(
    Array.from(
      { length: threads },
      (_, thread) =>
        new Promise((resolve, reject) => {
          const worker = new Worker(code, {
            eval: true,
            workerData: { url: WRITER_URL, file, count: perThread, thread, record: record() },
          });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
  const all = lines(file).map((line) => parseLine(line));
  assert.is(all.length, threads * perThread);
  for (let thread = 0; thread < threads; thread++) {
    assert.is(all.filter((r) => r.thread === thread).length, perThread);
  }
});

test('writer: "-" writes to standard output and leaves it open at close', () => {
  const script = `import { AccessLogWriter } from ${JSON.stringify(WRITER_URL)};
    import { writeSync } from 'node:fs';
    const writer = new AccessLogWriter({ file: '-', format: 'json' });
    const base = JSON.parse(process.env.RECORD);
    for (let i = 0; i < 50; i++) writer.write({ ...base, request_id: String(i), user_agent: 'y'.repeat(300) });
    writer.close();
    writeSync(1, 'still open\\n');`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, RECORD: JSON.stringify(record()) },
    encoding: 'utf8',
  });
  assert.is(child.status, 0, child.stderr);
  const out = child.stdout.split('\n').slice(0, -1);
  assert.is(out.pop(), 'still open');
  assert.equal(
    out.map((line) => parseLine(line).request_id),
    Array.from({ length: 50 }, (_, i) => String(i)),
  );
});

test('writer: a failed write is counted and kept, not thrown (its fd closed underneath: EBADF)', () => {
  const file = newFile();
  const writer = new AccessLogWriter({ file, format: 'json' });
  writer.write(record());
  writer.write(record());
  writer.write(record());
  fs.closeSync(writer.fdForTest);
  writer.flush();
  assert.is(writer.dropped, 3);
  assert.is(writer.lastError, 'EBADF');
  // The number may belong to another file by now: the writer must not write to it or close it again.
  assert.is(writer.fdForTest, -1);
  writer.write(record());
  writer.close();
  assert.is(writer.dropped, 4);
  assert.is(writer.lastError, 'EBADF');
  assert.is(size(file), 0);
});

test.run();
