/**
 * Reading a config file: size limit, JSON parse, schema validation, and
 * relative paths resolved against the file's folder. Every failure is a
 * ConfigError whose message has one line per problem, each naming the file,
 * the JSON path and the offending value.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { jsonPath } from './json-path.ts';
import { configSchema, type Config, type TlsConfig, type UpstreamTlsConfig } from './schema.ts';
import { readCertificates } from './certificates.ts';
import { checkUpstreamCas } from './upstream-tls.ts';
import { listenerConflicts } from './listeners.ts';

export const MAX_CONFIG_BYTES = 1024 * 1024;

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** One line for one issue, e.g. `$.proxy.listen_port: Too big: … (got 70000)`. */
export function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys
      .map((key) => `${jsonPath([...issue.path, key])}: unknown key (got ${describeValue(issue.input?.[key])})`)
      .join('\n');
  }
  return `${jsonPath(issue.path)}: ${issue.message} (got ${describeValue(issue.input)})`;
}

/**
 * Every issue, each on its own line (a user fixes them all in one go, as
 * `nginx -t` would list them if it could); each line names `source` too, so
 * any one of them, grepped out alone, still says which file it is about.
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[], source: string): string {
  if (issues.length === 0) return `${source}: $: invalid`;
  return issues
    .flatMap((issue) => describeIssue(issue).split('\n'))
    .map((line) => `${source}: ${line}`)
    .join('\n');
}

/** Validate an already parsed document; `source` names it in errors. */
export function parseConfig(document: unknown, source: string, baseDir?: string): Config {
  const result = configSchema.safeParse(document, { reportInput: true });
  const conflicts = listenerConflicts(document).map(
    ({ path, value }) =>
      `${source}: ${path}: give listeners or proxy.listen_host/listen_port, not both (got ${describeValue(value)})`,
  );
  const problems = [...conflicts, ...(result.success ? [] : [describeIssues(result.error.issues, source)])];
  // A failed parse is always among the problems; testing it too tells the type the data is there.
  if (problems.length > 0 || !result.success) throw new ConfigError(problems.join('\n'));
  return baseDir ? resolveRelativePaths(result.data, baseDir) : result.data;
}

export function loadConfigFile(file: string): Config {
  const path = resolve(file);
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_CONFIG_BYTES) {
      throw new ConfigError(`${path}: $: file is ${size} bytes, the limit is ${MAX_CONFIG_BYTES}`);
    }
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ConfigError(`${path}: $: cannot read the file (${code})`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${path}: $: not valid JSON (${(error as Error).message})`);
  }
  const config = parseConfig(document, path, dirname(path));
  // The certificates are part of the config: a missing or mismatched one is refused here, and by -t.
  readCertificates(config, path);
  checkUpstreamCas(config, path);
  return config;
}

export function resolveRelativePaths(config: Config, baseDir: string): Config {
  const at = (p: string | null) => (p === null ? null : resolve(baseDir, p));
  return {
    ...config,
    proxy: { ...config.proxy, pid_file: at(config.proxy.pid_file), request_hooks: at(config.proxy.request_hooks) },
    log: { ...config.log, file: at(config.log.file) },
    cache: config.cache && { ...config.cache, path: resolve(baseDir, config.cache.path) },
    access_log: config.access_log && {
      ...config.access_log,
      file: config.access_log.file === '-' ? '-' : resolve(baseDir, config.access_log.file),
    },
    backends: config.backends.map((backend) => withUpstreamTlsPath(backend, baseDir)),
    upstreams: Object.fromEntries(
      Object.entries(config.upstreams).map(([name, upstream]) => [
        name,
        {
          ...withUpstreamTlsPath(upstream, baseDir),
          backends: upstream.backends.map((backend) => withUpstreamTlsPath(backend, baseDir)),
        },
      ]),
    ),
    listeners:
      config.listeners === null
        ? null
        : config.listeners.map((listener) => ({
            ...listener,
            tls: listener.tls && resolveTlsPaths(listener.tls, baseDir),
          })),
  };
}

/** A backend's or an upstream's `tls.ca`, resolved against the config file's folder. */
function withUpstreamTlsPath<T extends { tls?: UpstreamTlsConfig | null }>(holder: T, baseDir: string): T {
  const tls = holder.tls;
  if (tls?.ca == null) return holder;
  return { ...holder, tls: { ...tls, ca: resolve(baseDir, tls.ca) } };
}

function resolveTlsPaths(tls: TlsConfig, baseDir: string): TlsConfig {
  const at = (p: string) => resolve(baseDir, p);
  return {
    ...tls,
    cert: at(tls.cert),
    key: at(tls.key),
    sni: tls.sni.map((entry) => ({ ...entry, cert: at(entry.cert), key: at(entry.key) })),
  };
}
