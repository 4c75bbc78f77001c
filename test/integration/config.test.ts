/** Config and command-line errors: exit 2 and one line naming the file, the JSON path and the value. */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfigFile, MAX_CONFIG_BYTES } from '../../src/config/load.ts';
import { writeConfig } from '../support/config-file.ts';

const main = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
const run = (...args: string[]) => {
  const result = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 10_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
};

test('-t: a valid config exits 0', () => {
  const file = writeConfig({ proxy: { listen_port: 9000 }, backends: [{ address: '127.0.0.1', port: 8081 }] });
  const result = run('-t', '-c', file);
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout, 'valid');
});

const invalidConfigs: [string, unknown, string, string][] = [
  ['a port out of range', { proxy: { listen_port: 70000 } }, '$.proxy.listen_port', '70000'],
  ['a string where a number belongs', { proxy: { drain_timeout_ms: 'soon' } }, '$.proxy.drain_timeout_ms', '"soon"'],
  [
    'a zero weight',
    {
      backends: [
        { address: 'a', port: 1 },
        { address: 'b', port: 2, weight: 0 },
      ],
    },
    '$.backends[1].weight',
    '0',
  ],
  ['an unknown key', { proxy: { listen_prot: 80 } }, '$.proxy.listen_prot', '80'],
  ['an unknown top-level key', { backend: [] }, '$.backend', '[]'],
  ['an unknown health check type', { health_check: { type: 'udp' } }, '$.health_check.type', '"udp"'],
  ['a path without a slash', { proxy: { ready_path: 'ready' } }, '$.proxy.ready_path', '"ready"'],
  [
    'an unknown balancing algorithm',
    { load_balancing: { algorithm: 'fastest' } },
    '$.load_balancing.algorithm',
    '"fastest"',
  ],
  [
    'a bad hash key',
    { load_balancing: { algorithm: 'consistent_hash', hash_key: 'header:' } },
    '$.load_balancing.hash_key',
    '"header:"',
  ],
  [
    'a bad expected_status range',
    { health_check: { expected_status: '200-' } },
    '$.health_check.expected_status',
    '"200-"',
  ],
  ['a non-boolean enabled', { backends: [{ address: 'a', port: 1, enabled: 'no' }] }, '$.backends[0].enabled', '"no"'],
  [
    'an unknown passive key',
    { health_check: { passive: { failures: 3, eject_ms: 5 } } },
    '$.health_check.passive.eject_ms',
    '5',
  ],
  [
    'a backend address with a scheme',
    { backends: [{ address: 'http://127.0.0.1', port: 80 }] },
    '$.backends[0].address',
    '"http://127.0.0.1"',
  ],
  [
    'a backend address with a path',
    { backends: [{ address: '127.0.0.1/api', port: 80 }] },
    '$.backends[0].address',
    '"127.0.0.1/api"',
  ],
  [
    'a backend address with a port',
    { backends: [{ address: '127.0.0.1:3000', port: 80 }] },
    '$.backends[0].address',
    '"127.0.0.1:3000"',
  ],
  [
    'a backend twice in one upstream',
    {
      backends: [
        { address: '127.0.0.1', port: 80 },
        { address: '127.0.0.1', port: 80 },
      ],
    },
    '$.backends[1].address',
    'listed twice',
  ],
  [
    'a backend twice in a named upstream',
    {
      upstreams: {
        api: {
          backends: [
            { address: '::1', port: 80 },
            { address: '::1', port: 80, weight: 2 },
          ],
        },
      },
    },
    '$.upstreams.api.backends[1].address',
    '[::1]:80',
  ],
  [
    'the admin port on the proxy port',
    { proxy: { listen_port: 9000 }, admin: { listen_port: 9000 } },
    '$.admin.listen_port',
    '9000',
  ],
  [
    'the admin port on a wildcard proxy port',
    { proxy: { listen_host: '::', listen_port: 9000 }, admin: { listen_host: '127.0.0.1', listen_port: 9000 } },
    '$.admin.listen_port',
    '9000',
  ],
  [
    'backends and discovery together',
    { upstreams: { api: { backends: [{ address: 'a', port: 1 }], discovery: { dns: 'api.test', port: 80 } } } },
    '$.upstreams.api.discovery',
    '"api.test"',
  ],
  [
    'discovery of type A without a port',
    { upstreams: { api: { discovery: { dns: 'api.test' } } } },
    '$.upstreams.api.discovery.port',
    'null',
  ],
  [
    'a refresh_ms under 1 s',
    { upstreams: { api: { discovery: { dns: 'api.test', port: 80, refresh_ms: 500 } } } },
    '$.upstreams.api.discovery.refresh_ms',
    '500',
  ],
  ['a DNS server without a port', { dns: { servers: ['10.96.0.10'] } }, '$.dns.servers[0]', '"10.96.0.10"'],
];

for (const [what, document, path, value] of invalidConfigs) {
  test(`${what}: exit 2, one line with file, ${path} and ${value}`, () => {
    const file = writeConfig(document);
    for (const args of [
      ['-t', '-c', file],
      ['-c', file],
    ]) {
      const result = run(...args);
      assert.is(result.code, 2);
      const lines = result.stderr.trim().split('\n');
      assert.is(lines.length, 1, result.stderr);
      assert.match(lines[0]!, file);
      assert.match(lines[0]!, `${path}:`);
      assert.match(lines[0]!, value);
      assert.is(result.stdout, '', 'nothing starts');
    }
  });
}

test('the admin listener on the same port but another host is fine, and so is port 0 for both', () => {
  const backends = [{ address: '127.0.0.1', port: 8081 }];
  const apart = writeConfig({
    proxy: { listen_host: '127.0.0.1', listen_port: 9000 },
    admin: { listen_host: '127.0.0.2', listen_port: 9000 },
    backends,
  });
  assert.is(run('-t', '-c', apart).code, 0, run('-t', '-c', apart).stderr);
  const ephemeral = writeConfig({ proxy: { listen_port: 0 }, admin: { listen_port: 0 }, backends });
  assert.is(run('-t', '-c', ephemeral).code, 0);
});

test('-p onto the admin port: exit 2 naming the flag and the admin key', () => {
  const file = writeConfig({
    proxy: { listen_port: 9000 },
    admin: { listen_port: 9901 },
    backends: [{ address: '127.0.0.1', port: 8081 }],
  });
  const result = run('-t', '-c', file, '-p', '9901');
  assert.is(result.code, 2);
  assert.match(result.stderr, `sluice: ${file}: $.admin.listen_port: --port 9901`);
});

test('several errors: each on its own line, each naming the file, its path and its value', () => {
  const file = writeConfig({ proxy: { listen_port: 70000, drain_timeout_ms: 'soon', listen_prot: 1 } });
  const result = run('-t', '-c', file);
  assert.is(result.code, 2);
  const lines = result.stderr.trim().split('\n');
  assert.is(lines.length, 3, result.stderr);
  for (const [i, [path, value]] of [
    ['$.proxy.listen_port', '70000'],
    ['$.proxy.drain_timeout_ms', '"soon"'],
    ['$.proxy.listen_prot', '1'],
  ].entries()) {
    assert.match(lines[i]!, `sluice: ${file}: ${path}: `);
    assert.match(lines[i]!, `(got ${value})`);
  }
  assert.not.match(result.stderr, 'more)');
});

test('-t loads request_hooks in a child: a missing module and a syntax error are exit 2 with the code and message', () => {
  const missing = writeConfig({
    proxy: { request_hooks: 'nope.ts' },
    backends: [{ address: '127.0.0.1', port: 8081 }],
  });
  const result = run('-t', '-c', missing);
  assert.is(result.code, 2);
  const lines = result.stderr.trim().split('\n');
  assert.is(lines.length, 1, result.stderr);
  assert.match(
    lines[0]!,
    `sluice: ${missing}: $.proxy.request_hooks: cannot load the module: ERR_MODULE_NOT_FOUND: Cannot find module`,
  );
  assert.match(lines[0]!, JSON.stringify(join(dirname(missing), 'nope.ts')));

  const broken = writeConfig({
    proxy: { request_hooks: 'broken.mjs' },
    backends: [{ address: '127.0.0.1', port: 8081 }],
  });
  writeFileSync(join(dirname(broken), 'broken.mjs'), 'export function onRequestStart( {\n');
  const syntax = run('-t', '-c', broken);
  assert.is(syntax.code, 2);
  assert.match(syntax.stderr, `$.proxy.request_hooks: cannot load the module: SyntaxError: `);

  const fine = writeConfig({
    proxy: { request_hooks: fileURLToPath(new URL('../fixtures/empty-hooks.ts', import.meta.url)) },
    backends: [{ address: '127.0.0.1', port: 8081 }],
  });
  assert.is(run('-t', '-c', fine).code, 0, run('-t', '-c', fine).stderr);
});

test('-t warns about a config without backends and still exits 0', () => {
  const result = run('-t', '-c', writeConfig({ proxy: { listen_port: 9000 } }));
  assert.is(result.code, 0);
  assert.match(result.stderr, 'sluice: warning: $.backends: no backends configured');
});

test('invalid JSON: exit 2 naming the file', () => {
  const file = writeConfig('{ "proxy": { "listen_port": 80, } }');
  const result = run('-c', file);
  assert.is(result.code, 2);
  assert.match(result.stderr, file);
  assert.match(result.stderr, 'not valid JSON');
});

test('a missing file: exit 2 naming it', () => {
  const result = run('-c', '/nonexistent/sluice.json');
  assert.is(result.code, 2);
  assert.match(result.stderr, '/nonexistent/sluice.json: $: cannot read the file (ENOENT)');
});

test('a file over 1 MiB is refused', () => {
  const file = writeConfig({});
  writeFileSync(file, `{"backends": [], "log": {"level": "info"}}${' '.repeat(MAX_CONFIG_BYTES)}`);
  assert.throws(() => loadConfigFile(file), /the limit is 1048576/);
  assert.is(run('-t', '-c', file).code, 2);
});

test('bad flags: exit 2 with a usage hint', () => {
  for (const args of [
    ['--port', 'http'],
    ['-p', '70000'],
    ['-w', '-1'],
    ['--log-level', 'loud'],
    ['--bogus'],
    ['-c'],
  ]) {
    const result = run(...args);
    assert.is(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, 'sluice --help');
  }
});

test('--help prints the usage in the seed style; -V the version', () => {
  const help = run('--help');
  assert.is(help.code, 0);
  assert.match(help.stdout, /^Usage: sluice \[OPTIONS\]/);
  for (const flag of [
    '-p, --port PORT',
    '-c, --config FILE',
    '-w, --workers N',
    '--pid-file FILE',
    '-t, --test',
    '--log-level LEVEL',
    '--demo',
    '-h, --help',
    '-V, --version',
  ]) {
    assert.match(help.stdout, flag);
  }
  const version = run('-V');
  assert.is(version.code, 0);
  assert.match(version.stdout, /^sluice \d+\.\d+\.\d+/);
});

test('flags override the file: -p beats listen_port (checked with -t on a config that is otherwise valid)', () => {
  const file = writeConfig({ proxy: { listen_port: 9000 } });
  assert.is(run('-t', '-c', file, '-p', '9001').code, 0);
});

test.run();
