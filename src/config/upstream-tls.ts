/**
 * The CA files of TLS upstreams, checked when the config is loaded (start,
 * `-t`, every reload) as the listeners' certificates are: each readable and
 * holding at least one PEM certificate. A problem is one line naming the
 * config file, the JSON path and the CA file.
 *
 * The listener threads and the health checker read the file themselves
 * (upstream-contexts.ts); a bad file is refused here first.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.ts';
import { jsonPath } from './json-path.ts';
import type { Config, UpstreamTlsConfig } from './schema.ts';

type Path = (string | number)[];

/** Every `tls` of a backend or an upstream, with its JSON path. */
function upstreamTlsEntries(config: Config): { tls: UpstreamTlsConfig; path: Path }[] {
  const found: { tls: UpstreamTlsConfig; path: Path }[] = [];
  const add = (tls: UpstreamTlsConfig | null | undefined, path: Path) => {
    if (tls) found.push({ tls, path: [...path, 'tls'] });
  };
  config.backends.forEach((backend, index) => add(backend.tls, ['backends', index]));
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    add(upstream.tls, ['upstreams', name]);
    upstream.backends.forEach((backend, index) => add(backend.tls, ['upstreams', name, 'backends', index]));
  }
  return found;
}

function caProblem(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return `cannot read the file (${(error as NodeJS.ErrnoException).code ?? 'EIO'})`;
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) return 'not a PEM certificate';
  try {
    new X509Certificate(text);
  } catch (error) {
    return `not a PEM certificate (${(error as Error).message})`;
  }
  return undefined;
}

/** Throws a ConfigError with one line per unusable CA file. */
export function checkUpstreamCas(config: Config, source: string): void {
  const problems = upstreamTlsEntries(config).flatMap(({ tls, path }) => {
    if (tls.ca === null) return [];
    const problem = caProblem(tls.ca);
    return problem ? [`${source}: ${jsonPath([...path, 'ca'])}: ${problem} (got ${JSON.stringify(tls.ca)})`] : [];
  });
  if (problems.length > 0) throw new ConfigError(problems.join('\n'));
}
