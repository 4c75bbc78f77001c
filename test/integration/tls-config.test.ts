/**
 * `listeners` and `tls` in the config: what is refused (exit 2, one line
 * naming the file and the JSON path), checked by `-t` as at start. The SNI
 * choice as a pure function is in test/unit/listener/tls/sni.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testCa } from '../support/certs.ts';

const main = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
const run = (...args: string[]) => {
  const result = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 10_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
};

const ca = testCa();
ca.leaf('site', ['site.test']);
ca.leaf('other', ['other.test']);

/** A config in the CA's folder, so that `site.pem` is relative to it. */
function configWith(document: unknown, name: string): string {
  const file = join(ca.dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ backends: [{ address: '127.0.0.1', port: 8081 }], ...(document as object) }));
  return file;
}
const tlsListener = (tls: Record<string, unknown>) => ({
  listeners: [{ host: '127.0.0.1', port: 8443, tls: { cert: 'site.pem', key: 'site.key', ...tls } }],
});

test('-t: a TLS listener with paths relative to the config file is valid', () => {
  const file = configWith(
    tlsListener({ sni: [{ server_names: ['other.test', '*.other.test'], cert: 'other.pem', key: 'other.key' }] }),
    'valid',
  );
  const result = run('-t', '-c', file);
  assert.is(result.code, 0, result.stderr);
});

test('-t: a missing certificate file is one line naming the file and the JSON path', () => {
  const file = configWith(tlsListener({ cert: 'missing.pem' }), 'missing');
  const result = run('-t', '-c', file);
  assert.is(result.code, 2);
  assert.is(
    result.stderr,
    `sluice: ${file}: $.listeners[0].tls.cert: cannot read the file (ENOENT) (got ${JSON.stringify(join(ca.dir, 'missing.pem'))})\n`,
  );
});

test('-t: a key that does not match its certificate is refused', () => {
  const file = configWith(
    tlsListener({ sni: [{ server_names: ['other.test'], cert: 'other.pem', key: 'site.key' }] }),
    'mismatch',
  );
  const result = run('-t', '-c', file);
  assert.is(result.code, 2);
  const lines = result.stderr.trim().split('\n');
  assert.is(lines.length, 1);
  assert.ok(
    lines[0]!.startsWith(
      `sluice: ${file}: $.listeners[0].tls.sni[0].key: the key does not match the certificate ${join(ca.dir, 'other.pem')}`,
    ),
    lines[0],
  );
});

test('-t: a file that is not PEM is refused', () => {
  const file = configWith(tlsListener({ cert: 'valid.json' }), 'not-pem');
  const result = run('-t', '-c', file);
  assert.is(result.code, 2);
  assert.match(result.stderr, `${file}: $.listeners[0].tls.cert: not a PEM certificate`);
});

test('-t: invalid server_names entries are refused, each on its own line', () => {
  const names = ['ok.test', 'bad name', '*.', '127.0.0.1', 'a.*.test', 'ok.test'];
  const file = configWith(
    tlsListener({ sni: [{ server_names: names, cert: 'other.pem', key: 'other.key' }] }),
    'names',
  );
  const result = run('-t', '-c', file);
  assert.is(result.code, 2);
  const lines = result.stderr.trim().split('\n');
  const at = (index: number) => `${file}: $.listeners[0].tls.sni[0].server_names[${index}]:`;
  assert.is(lines.length, 4, result.stderr);
  assert.ok(lines[0]!.includes(`${at(1)} expected a host name or *.domain (got "bad name")`), lines[0]);
  assert.ok(lines[1]!.includes(`${at(2)} expected a host name or *.domain`), lines[1]);
  assert.ok(lines[2]!.includes(`${at(3)} SNI carries host names, not IP addresses`), lines[2]);
  assert.ok(lines[3]!.includes(`${at(4)} expected a host name or *.domain`), lines[3]);
});

test('-t: a name in two sni entries is refused', () => {
  const sni = [
    { server_names: ['other.test'], cert: 'other.pem', key: 'other.key' },
    { server_names: ['OTHER.test'], cert: 'other.pem', key: 'other.key' },
  ];
  const result = run('-t', '-c', configWith(tlsListener({ sni }), 'twice'));
  assert.is(result.code, 2);
  assert.match(
    result.stderr,
    '$.listeners[0].tls.sni[1].server_names[0]: this name is in an earlier sni entry already',
  );
});

test('-t: listeners and proxy.listen_port together are refused', () => {
  const file = configWith({ ...tlsListener({}), proxy: { listen_port: 8080 } }, 'both');
  const result = run('-t', '-c', file);
  assert.is(result.code, 2);
  assert.is(
    result.stderr,
    `sluice: ${file}: $.proxy.listen_port: give listeners or proxy.listen_host/listen_port, not both (got 8080)\n`,
  );
});

test('-t: two listeners on one port are refused; http2 and max_concurrent_streams are checked', () => {
  const listeners = [
    { host: '127.0.0.1', port: 8443 },
    { host: '0.0.0.0', port: 8443 },
    { port: 8444, http2: true, max_concurrent_streams: 0 },
  ];
  const result = run('-t', '-c', configWith({ listeners }, 'same-port'));
  assert.is(result.code, 2);
  assert.match(result.stderr, '$.listeners[1].port: listeners[0] listens on this port already (got 8443)');
  assert.match(result.stderr, '$.listeners[2].max_concurrent_streams');
  assert.not.match(result.stderr, '$.listeners[2].http2');
});

test('-p with several listeners is a usage error; with one, it sets its port', () => {
  const two = configWith(
    {
      listeners: [
        { host: '127.0.0.1', port: 8443 },
        { host: '127.0.0.1', port: 8444 },
      ],
    },
    'two',
  );
  const refused = run('-t', '-c', two, '-p', '9000');
  assert.is(refused.code, 2);
  assert.match(refused.stderr, '--port sets the port of the only listener, and the config has 2 listeners');
  const one = configWith({ listeners: [{ host: '127.0.0.1', port: 8443 }], admin: { listen_port: 9000 } }, 'one');
  // The override lands on the listener: -p 9000 now collides with the admin port.
  const collides = run('-t', '-c', one, '-p', '9000');
  assert.is(collides.code, 2);
  assert.match(collides.stderr, '$.admin.listen_port: --port 9000 is the admin listener');
});

test.run();
