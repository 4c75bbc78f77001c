/**
 * The certificates and keys of the TLS listeners, read from their files and
 * checked: each file readable, each certificate PEM that X509Certificate
 * parses, each key a key that matches its certificate, and the pair one that
 * OpenSSL takes into a context. Every problem is one line naming the config
 * file, the JSON path and the file it is about, as the schema's errors do.
 *
 * Read in the main thread, at start and at every reload, and sent to the
 * listener threads as PEM text: all threads get the same bytes, and a file
 * replaced half-way through a reload can never reach one thread only.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../errors.ts';
import type { Config } from './schema.ts';
import { jsonPath } from './json-path.ts';
import { listenSpecs } from './listeners.ts';
import type { CertificateInfo, ListenerTls, PemPair } from '../protocol.ts';

type Path = (string | number)[];

function readPem(file: string, path: Path, problems: string[]): string | undefined {
  try {
    return readFileSync(resolve(file), 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    problems.push(`${jsonPath(path)}: cannot read the file (${code}) (got ${JSON.stringify(file)})`);
    return undefined;
  }
}

/** One certificate and its key, checked; undefined (with the problems recorded) when unusable. */
function readPair(
  certFile: string,
  keyFile: string,
  path: Path,
  problems: string[],
): { pair: PemPair; x509: X509Certificate } | undefined {
  const cert = readPem(certFile, [...path, 'cert'], problems);
  const key = readPem(keyFile, [...path, 'key'], problems);
  if (cert === undefined || key === undefined) return undefined;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (error) {
    problems.push(
      `${jsonPath([...path, 'cert'])}: not a PEM certificate (${(error as Error).message}) (got ${JSON.stringify(certFile)})`,
    );
    return undefined;
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    problems.push(
      `${jsonPath([...path, 'key'])}: not a PEM private key (${(error as Error).message}) (got ${JSON.stringify(keyFile)})`,
    );
    return undefined;
  }
  if (!x509.checkPrivateKey(privateKey)) {
    problems.push(
      `${jsonPath([...path, 'key'])}: the key does not match the certificate ${certFile} (got ${JSON.stringify(keyFile)})`,
    );
    return undefined;
  }
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    problems.push(
      `${jsonPath([...path, 'cert'])}: OpenSSL refuses the pair (${(error as Error).message}) (got ${JSON.stringify(certFile)})`,
    );
    return undefined;
  }
  return { pair: { cert_file: certFile, key_file: keyFile, cert, key }, x509 };
}

/** What `/status` and the metrics say of a certificate. */
export function certificateInfo(x509: X509Certificate, name: string, listener: string): CertificateInfo {
  const sans = (x509.subjectAltName ?? '').split(', ').filter((entry) => entry.length > 0);
  return {
    name,
    listener,
    subject: x509.subject.replaceAll('\n', ', '),
    sans,
    not_after: new Date(x509.validTo).toISOString(),
  };
}

/**
 * The TLS material of each listener (null for a plain one), in the order of
 * `listenSpecs`. Throws a ConfigError with one line per problem.
 */
export function readCertificates(config: Config, source: string): (ListenerTls | null)[] {
  const problems: string[] = [];
  const material = listenSpecs(config).map((spec, index): ListenerTls | null => {
    const tls = spec.tls;
    if (!tls) return null;
    const address = `${spec.host}:${spec.port}`;
    const base: Path = ['listeners', index, 'tls'];
    const certificates: CertificateInfo[] = [];
    const main = readPair(tls.cert, tls.key, base, problems);
    if (main) certificates.push(certificateInfo(main.x509, tls.cert, address));
    const sni = tls.sni.flatMap((entry, at) => {
      const read = readPair(entry.cert, entry.key, [...base, 'sni', at], problems);
      if (!read) return [];
      certificates.push(certificateInfo(read.x509, entry.cert, address));
      return [{ server_names: entry.server_names, pair: read.pair }];
    });
    if (!main) return null;
    return {
      default: main.pair,
      sni,
      min_version: tls.min_version,
      session_tickets: tls.session_tickets,
      certificates,
    };
  });
  if (problems.length > 0) throw new ConfigError(problems.map((line) => `${source}: ${line}`).join('\n'));
  return material;
}
