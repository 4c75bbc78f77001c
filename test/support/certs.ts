/**
 * Certificates made at test time with Debian's `openssl`: one ECDSA P-256
 * CA per call of `testCa`, leaf certificates signed by it for the names a
 * test asks. Nothing here is ever committed: every key lives in a temp
 * folder of the test run.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './config-file.ts';

const openssl = (args: string[], cwd: string) =>
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });

export interface TestCa {
  dir: string;
  /** The CA certificate's PEM, for a client's `ca`. */
  pem: string;
  /** A leaf for `names` (the first is the CN), valid `days`; files `<file>.pem` and `<file>.key` in `dir`. */
  leaf(file: string, names: string[], days?: number): { cert: string; key: string };
}

export function testCa(dir = tempDir('sluice-tls-')): TestCa {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  openssl(
    ['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=sluice test CA', '-days', '30', '-out', 'ca.pem'],
    dir,
  );
  let serial = 1;
  return {
    dir,
    pem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    leaf(file, names, days = 30) {
      const cert = join(dir, `${file}.pem`);
      const key = join(dir, `${file}.key`);
      openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], dir);
      openssl(['req', '-new', '-key', key, '-subj', `/CN=${names[0]}`, '-out', `${file}.csr`], dir);
      const ext = join(dir, `${file}.ext`);
      writeFileSync(ext, `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\n`);
      const args = [
        'x509',
        '-req',
        '-in',
        `${file}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-set_serial',
        String(serial++),
      ];
      openssl([...args, '-days', String(days), '-extfile', ext, '-out', cert], dir);
      return { cert, key };
    },
  };
}
